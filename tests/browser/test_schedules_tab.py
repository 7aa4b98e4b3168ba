"""The Schedules tab in headless Chromium, against gunicorn with DEBUG off, in a browser whose
time zone is Asia/Tokyo: next runs in the viewer's zone with the zone named, Pause (until a
local time) and Resume through their confirmations, and a page that fits at 1280 and 390 px.

That a paused schedule is not dispatched by a real beat is tests/integration/
test_schedule_pause.py (a real scheduler and task handler).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from playwright.sync_api import Browser, Page, expect

from limepkg_task_starter.models import Application, ScheduleDeclaration, SchedulePause
from tests.browser.conftest import TASKS, log_in, read_csp_violations, staff_user

pytestmark = pytest.mark.browser
TOKYO = "Asia/Tokyo"  # UTC+9 all year: no daylight-saving day can make the test flaky


@pytest.fixture
def tokyo_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(timezone_id=TOKYO, locale="en-GB")
    page = context.new_page()
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    yield page
    context.close()


@pytest.fixture
def declared(demo_site: Application) -> PeriodicTask:
    """The dummy task declared in code for ``demo``: daily at 07:00 UTC, 16:00 in Tokyo."""
    periodic = PeriodicTask.objects.create(
        name=f"demo: {TASKS[0]}",
        task=TASKS[0],
        crontab=CrontabSchedule.objects.create(minute="0", hour="7", timezone="UTC"),
        args=json.dumps([4, 5]),
        headers=json.dumps({"lime_application": "demo", "lime_user": "integration-user"}),
    )
    ScheduleDeclaration.objects.create(
        application=demo_site,
        key=TASKS[0],
        task_name=TASKS[0],
        package="solution_demo",
        periodic_task=periodic,
    )
    return periodic


def test_next_runs_are_shown_in_the_viewers_zone_and_named(
    tokyo_page: Page, production_server: Any, demo_site: Application, declared: PeriodicTask
) -> None:
    page = tokyo_page
    staff_user("ada", demo_site, "view_taskrun", "start_task")
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/demo/runs/")
    page.locator(".ts-tabs").get_by_role("link", name="Schedules").click()

    expect(page.locator("h1")).to_have_text("Schedules of demo")
    expect(page.locator(".ts-tabs [aria-current=page]")).to_have_text("Schedules")
    expect(page.locator(".ts-zone-note .ts-zone")).to_have_text(TOKYO)
    row = page.locator(f"#schedule-{declared.id}")
    expect(row.get_by_text("Code", exact=True)).to_be_visible()
    next_run = row.locator("[data-label='Next run'] time").first
    # 07:00 UTC is 16:00 in Tokyo; the zone is named after the time.
    expect(next_run).to_contain_text(" 16:00:00 GMT+9")
    row.locator("summary", has_text="Next 5").click()
    expect(row.locator(".ts-next-five li")).to_have_count(5)
    for item in row.locator(".ts-next-five li time").all():
        expect(item).to_contain_text("16:00:00 GMT+9")
    upcoming = page.locator("#upcoming tbody tr")
    expect(upcoming).to_have_count(1)
    expect(upcoming.first).to_contain_text("16:00:00 GMT+9")
    assert read_csp_violations(page) == []


def test_pause_until_a_local_time_then_resume(
    tokyo_page: Page, production_server: Any, demo_site: Application, declared: PeriodicTask
) -> None:
    page = tokyo_page
    staff_user("pat", demo_site, "view_taskrun", "pause_schedule")
    log_in(page, production_server, "pat")
    page.goto(f"{production_server.url}/admin/task-starter/demo/schedules/")
    row = page.locator(f"#schedule-{declared.id}")

    row.get_by_role("link", name="Pause…").click()
    expect(page.locator("h1")).to_have_text("Pause this schedule?")
    expect(page.locator("#until-help .ts-zone")).to_have_text(TOKYO)
    page.fill("#until", "2999-06-01T09:30")
    page.get_by_role("button", name="Pause the schedule").click()

    expect(page.locator(".messagelist")).to_contain_text("Paused demo:")
    expect(page.locator(".messagelist")).to_contain_text("until 2999-06-01 09:30 JST")
    pause = SchedulePause.objects.get()
    assert pause.until == datetime.datetime(2999, 6, 1, 0, 30, tzinfo=datetime.UTC)
    row = page.locator(f"#schedule-{declared.id}")
    expect(row.locator(".ts-status-paused")).to_have_text("Paused")
    expect(row).to_contain_text("by pat")
    expect(row).to_contain_text("ends by itself at 2999-06-01 09:30:00 GMT+9")
    expect(row.locator("[data-label='Next run'] time").first).to_contain_text(
        "2999-06-01 16:00:00 GMT+9"
    )

    row.get_by_role("link", name="Resume…").click()
    expect(page.locator("#content-main")).to_contain_text("the ticks it missed while paused")
    page.get_by_role("button", name="Resume the schedule").click()
    expect(page.locator(".messagelist")).to_contain_text("Resumed demo:")
    expect(page.locator(f"#schedule-{declared.id} .ts-status-success")).to_have_text("Enabled")
    assert not SchedulePause.objects.exists()
    assert read_csp_violations(page) == []


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_tab_fits_the_window(
    tokyo_page: Page,
    production_server: Any,
    demo_site: Application,
    declared: PeriodicTask,
    width: int,
    scheme: str,
) -> None:
    page = tokyo_page
    staff_user("ada", demo_site, "view_taskrun", "start_task", "pause_schedule")
    PeriodicTask.objects.create(
        name="demo: added in the admin, with a long name to see how it wraps on a phone",
        task=TASKS[1],
        crontab=CrontabSchedule.objects.create(minute="*/20", hour="8-17", day_of_week="1-5"),
        headers=json.dumps({"lime_application": "demo"}),
    )
    page.emulate_media(color_scheme=scheme)
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/demo/schedules/")
    expect(page.locator("#schedules tbody tr")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    for name in ("Pause…", "Run now…"):
        expect(
            page.locator(f"#schedule-{declared.id}").get_by_role("link", name=name)
        ).to_be_visible()
