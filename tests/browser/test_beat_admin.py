"""django-celery-beat's schedule form, as deployed under the site's Content-Security-Policy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from playwright.sync_api import Page, expect

from lime_task import headers
from limepkg_task_starter.models import Application, ScheduleDeclaration
from tests.browser.conftest import PASSWORD, TASKS, log_in, read_csp_violations, staff_user
from tests.support.server import ProductionServer, start_production_server

pytestmark = pytest.mark.browser
TRANSLATION = ".field-crontab_translation .readonly"


@pytest.fixture
def own_server(transactional_db: None, tmp_path: Path) -> Iterator[ProductionServer]:
    """A server of the test's own: the admin logs a change against its content type, which a
    process caches by id, and the flush between tests renumbers content types; a session-wide
    server that had cached it would fail the save on a foreign key."""
    server = start_production_server(tmp_path, workers=1)
    yield server
    server.stop()


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "undeclared"])
def test_a_new_crontab_is_translated_on_the_form_and_saved_within_the_csp(
    page: Page, own_server: ProductionServer, demo_site: Application, csp_violations, declared: bool
) -> None:
    morning = CrontabSchedule.objects.create(minute="30", hour="2")
    nightly = CrontabSchedule.objects.create(minute="0", hour="4")
    periodic = PeriodicTask.objects.create(
        name=f"demo: {TASKS[0]}",
        task=TASKS[0],
        crontab=morning,
        args="[1]",
        headers=json.dumps({headers.APPLICATION: "demo", headers.USER: "integration-user"}),
    )
    if declared:
        ScheduleDeclaration.objects.create(
            application=demo_site,
            key=TASKS[0],
            task_name=TASKS[0],
            package="solution_demo",
            periodic_task=periodic,
        )
        staff_user(
            "ada",
            demo_site,
            "view_taskrun",
            "view_periodictask",
            "change_periodictask",
            "view_crontabschedule",
        )
    else:  # a schedule not declared in code can run anything as anyone: superusers only
        User.objects.create_superuser("ada", password=PASSWORD)
    console: list[str] = []
    page.on(
        "console",
        lambda message: "Content Security Policy" in message.text and console.append(message.text),
    )
    log_in(page, own_server, "ada")

    page.goto(f"{own_server.url}/admin/django_celery_beat/periodictask/{periodic.pk}/change/")
    expect(page.locator(TRANSLATION)).to_have_text("At 02:30 AM UTC")
    page.select_option("#id_crontab", str(nightly.pk))
    expect(page.locator(TRANSLATION)).to_have_text("At 04:00 AM UTC")
    page.click("input[name=_save]")

    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    periodic.refresh_from_db()
    assert (periodic.crontab_id, periodic.task, periodic.args) == (nightly.pk, TASKS[0], "[1]")
    assert read_csp_violations(page) == [] and console == []
