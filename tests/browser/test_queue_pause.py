"""Pausing a queue in headless Chromium: Pause… asks first, the handlers page and the runs page
then say since when and by whom, Resume… takes it back; the page fits at 1280 and 390 px, in
light and dark mode. (Task handlers honouring the pause: tests/integration/test_queue_pause.py.)"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from limepkg_task_starter.models import Application, AuditEntry, QueuePause
from tests.browser.conftest import log_in, read_csp_violations, staff_user

pytestmark = pytest.mark.browser
QUEUE = "lime_task_queue_background"
# Where the screenshots go, for a person to look at (unset: nowhere).
SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", "")


def fits(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_pause_is_confirmed_shown_on_both_pages_and_resumed(
    page: Page, production_server: Any, demo_site: Application, csp_violations: list[str]
) -> None:
    staff_user("ada", demo_site, "view_taskrun", "pause_queue")
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/workers/?application=demo")
    row = page.locator(f"#queue-{QUEUE}")
    expect(row).to_contain_text("Taking runs")

    row.get_by_role("link", name="Pause…").click()
    expect(page.locator("h1")).to_have_text(f"Pause queue {QUEUE}?")
    page.get_by_role("button", name="Pause the queue").click()

    expect(page.locator(".messagelist .success")).to_contain_text(f"Paused queue {QUEUE}")
    expect(row).to_contain_text("Paused")
    expect(row).to_contain_text("by ada")
    notice = page.locator(".ts-queue-pauses")
    expect(notice).to_contain_text(f"Queue {QUEUE} paused since")
    assert QueuePause.objects.filter(queue=QUEUE, paused_by_username="ada").exists()

    page.locator(".ts-tabs").get_by_role("link", name="Runs").click()
    expect(page.locator(".ts-queue-pauses")).to_contain_text(f"Queue {QUEUE} paused since")
    expect(page.locator(".ts-queue-pauses")).to_contain_text("by ada")

    page.go_back()
    row.get_by_role("link", name="Resume…").click()
    page.get_by_role("button", name="Resume the queue").click()
    expect(row).to_contain_text("Taking runs")
    expect(page.locator(".ts-queue-pauses")).to_have_count(0)
    assert QueuePause.objects.get().resumed_at is not None
    assert list(AuditEntry.objects.order_by("created_at").values_list("action", flat=True)) == [
        "queue_pause",
        "queue_resume",
    ]
    assert read_csp_violations(page) == []


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [1280, 390])
def test_the_page_with_a_paused_queue_fits(
    page: Page, production_server: Any, demo_site: Application, width: int, scheme: str
) -> None:
    staff_user("ada", demo_site, "view_taskrun", "pause_queue")
    page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    page.set_viewport_size({"width": width, "height": 900})
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/workers/?application=demo")
    page.locator(f"#queue-{QUEUE}").get_by_role("link", name="Pause…").click()
    page.get_by_role("button", name="Pause the queue").click()
    expect(page.locator(f"#queue-{QUEUE}")).to_contain_text("Paused")

    assert fits(page)
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{SCREENSHOTS}/handlers-{width}-{scheme}.png", full_page=True)
        page.goto(f"{production_server.url}/admin/task-starter/workers/queues/{QUEUE}/resume/")
        page.screenshot(path=f"{SCREENSHOTS}/resume-{width}-{scheme}.png", full_page=True)
        page.goto(f"{production_server.url}/admin/task-starter/demo/runs/")
        page.screenshot(path=f"{SCREENSHOTS}/runs-{width}-{scheme}.png")
