"""The task handlers and queues page in headless Chromium, against gunicorn with DEBUG off:
reached from an application's tabs, it keeps them, and it refreshes itself."""

from __future__ import annotations

import re

import pytest
from django.utils import timezone
from playwright.sync_api import Page, Request, expect

from limepkg_task_starter.models import Application, WorkerHeartbeat
from tests.browser.conftest import log_in, read_csp_violations, staff_user

pytestmark = pytest.mark.browser
QUEUE = "lime_default_task_queue"


def test_the_page_keeps_the_tabs_and_shows_a_new_handler_without_a_reload(
    page: Page, production_server, demo_site: Application, csp_violations
) -> None:
    staff_user("ada", demo_site, "view_taskrun", "start_task")
    in_flight: list[Request] = []
    most_in_flight = 0

    def sent(request: Request) -> None:
        nonlocal most_in_flight
        if "/workers/" in request.url and request.headers.get("hx-request"):
            in_flight.append(request)
            most_in_flight = max(most_in_flight, len(in_flight))

    def done(request: Request) -> None:
        if request in in_flight:
            in_flight.remove(request)

    page.on("request", sent)
    page.on("requestfinished", done)
    page.on("requestfailed", done)
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/demo/runs/")

    page.get_by_role("link", name="Task handlers and queues").click()
    expect(page.locator("h1")).to_have_text("Task handlers and queues")
    expect(page.locator(".breadcrumbs")).to_contain_text("Task starter › demo › Task handlers")
    tabs = page.locator(".ts-tabs")
    expect(tabs.get_by_role("link", name="Tasks")).to_be_visible()
    expect(tabs.get_by_role("link", name="Runs")).to_be_visible()
    expect(tabs.locator("[aria-current=page]")).to_have_text("Task handlers and queues")
    # In the whole suite a session-wide task handler may be alive too: count from what is shown.
    consumers = page.locator(f"#queue-{QUEUE} .ts-consumers")
    expect(consumers).to_have_text(re.compile(r"^\d+$"))
    before = int(consumers.inner_text())
    page.evaluate("window.notReloaded = true")

    WorkerHeartbeat.objects.create(
        hostname="late@host", last_seen=timezone.now(), concurrency=3, queues=[QUEUE]
    )

    expect(page.locator("#handlers")).to_contain_text("late@host", timeout=15_000)
    expect(page.locator("#handlers")).to_contain_text("3")
    expect(consumers).not_to_have_text(str(before))
    assert int(consumers.inner_text()) >= 1
    assert page.evaluate("window.notReloaded") is True
    page.wait_for_timeout(6_000)  # another poll or two
    assert most_in_flight == 1
    assert read_csp_violations(page) == []

    tabs.get_by_role("link", name="Runs").click()
    expect(page.locator("h1")).to_have_text("Runs of demo")
