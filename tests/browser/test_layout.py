"""Pages that fit: nothing wider than the window at 1280 and 390 px with long values, the runs'
actions in reach on the last row, the task list without the sidebar's squeeze, an icon."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from lime_task.status import Origin
from limepkg_task_starter.models import Application, TaskRun
from tests.browser.conftest import log_in, read_csp_violations, staff_user

pytestmark = pytest.mark.browser
DEMO = "solution_demo.tasks.my_tasks"
TASKS = [f"{DEMO}.dummy_task", f"{DEMO}.slow_report", f"{DEMO}.broken_import"]
LONG = "x" * 200
MENU = ["View info", "Run again…", "Cancel…", "Copy task id", "Copy arguments"]


@pytest.fixture
def ops(transactional_db: None) -> Application:
    return Application.objects.create(name="ops", config={"limepkg_task_starter": {"tasks": TASKS}})


def add_run(application: Application, **values: Any) -> TaskRun:
    sent = timezone.now() - timedelta(minutes=values.pop("minutes_ago", 1))
    defaults: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "application": application,
        "task_name": f"{DEMO}.dummy_task",
        "status": "SUCCESS",
        "origin": Origin.PAGE,
        "in_history": True,
        "run_as": "ada",
        "queue": "celery",
        "created_at": sent,
        "started_at": sent,
        "finished_at": sent + timedelta(seconds=1),
        "arguments": {"number": LONG, "numberx": LONG},
        "result": LONG,
    }
    return TaskRun.objects.create(**(defaults | values))


@pytest.fixture
def long_runs(ops: Application) -> list[TaskRun]:
    """A page of runs with 200-character arguments, results and messages; the oldest (the
    last row) still running."""
    oldest = add_run(
        ops,
        task_name=f"{DEMO}.slow_report",
        status="STARTED",
        # Started just now (a task handler's reconciliation leaves it alone), sent an hour ago.
        started_at=timezone.now(),
        finished_at=None,
        result=None,
        progress_done=3,
        progress_total=60,
        progress_message=LONG,
        minutes_ago=60,
    )
    failed = [
        add_run(
            ops,
            status="FAILURE",
            result=None,
            error_type="builtins.ValueError",
            error_message=LONG,
            minutes_ago=50 - n,
        )
        for n in range(3)
    ]
    done = [add_run(ops, minutes_ago=40 - n) for n in range(12)]
    return [oldest, *failed, *done]


def inside(box: dict[str, float] | None, width: int, height: int) -> bool:
    return bool(
        box
        and box["x"] >= 0
        and box["y"] >= 0
        and box["x"] + box["width"] <= width
        and box["y"] + box["height"] <= height
    )


def on_top(page: Page, locator: Any) -> bool:
    """Whether the element is what a click at its middle would reach (not cut off by a
    scroll box, not under another element)."""
    return bool(
        locator.evaluate(
            """element => {
                const box = element.getBoundingClientRect();
                const x = box.x + box.width / 2, y = box.y + box.height / 2;
                const hit = document.elementFromPoint(x, y);
                return hit !== null && element.contains(hit);
            }"""
        )
    )


@pytest.mark.parametrize("width", [1280, 1024])
def test_every_action_of_the_last_row_is_in_view_with_long_arguments(
    page: Page, production_server: Any, long_runs: list[TaskRun], width: int
) -> None:
    staff_user("ada", long_runs[0].application, "view_taskrun", "start_task", "cancel_run")
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/ops/runs/")
    last = page.locator("#runs tbody tr").last
    expect(last).to_have_id(f"run-{long_runs[0].id}")
    last.scroll_into_view_if_needed()
    trigger = last.locator("details.ts-menu summary")
    assert inside(trigger.bounding_box(), width, 800), trigger.bounding_box()
    assert on_top(page, trigger)

    trigger.click()
    items = last.locator("details.ts-menu li")
    expect(items).to_have_text(MENU)
    for index in range(items.count()):
        item = items.nth(index)
        assert inside(item.bounding_box(), width, 800), (MENU[index], item.bounding_box())
        assert on_top(page, item), f"{MENU[index]} is covered or cut off"

    page.wait_for_timeout(2_500)  # a live refresh redraws the rows: the menu stays in view
    assert on_top(page, last.locator("details.ts-menu li").last)
    last.locator("text=Cancel…").click()
    expect(page.locator("h1")).to_have_text("Cancel this run?")
    # The confirmation's buttons are big enough to hit; the one that stops work is red.
    stop = page.get_by_role("button", name="Cancel the run")
    back = page.get_by_role("link", name="No, go back")
    for button in (stop, back):
        assert (button.bounding_box() or {"height": 0})["height"] >= 36
    red = page.evaluate("getComputedStyle(document.body).getPropertyValue('--delete-button-bg')")
    assert red.strip() == "#ba2121"
    expect(stop).to_have_css("background-color", "rgb(186, 33, 33)")


def test_nothing_is_wider_than_the_window(
    page: Page, production_server: Any, long_runs: list[TaskRun], csp_violations: list[str]
) -> None:
    staff_user("ada", long_runs[0].application, "view_taskrun", "start_task", "cancel_run")
    log_in(page, production_server, "ada")
    running = long_runs[0].id
    paths = [
        "ops/",
        f"ops/tasks/{DEMO}.dummy_task/",
        f"ops/tasks/{DEMO}.slow_report/",
        "ops/runs/",
        "ops/runs/retry-all/",
        f"runs/{running}/",
        f"runs/{running}/cancel/",
        f"runs/{long_runs[1].id}/",
        "workers/",
    ]
    too_wide = []
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path in paths:
            page.goto(f"{production_server.url}/admin/task-starter/{path}")
            page.wait_for_load_state("networkidle")
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if scroll_width > width:
                too_wide.append(f"{path} is {scroll_width} px wide at {width} px")
    assert too_wide == []
    assert read_csp_violations(page) == []


def test_the_task_list_gives_its_descriptions_room_and_marks_the_scheduled(
    page: Page, production_server: Any, ops: Application
) -> None:
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    from limepkg_task_starter.models import ScheduleDeclaration

    ScheduleDeclaration.objects.create(
        application=ops,
        key=f"{DEMO}.slow_report",
        task_name=f"{DEMO}.slow_report",
        package="solution_demo",
        periodic_task=PeriodicTask.objects.create(
            name="ops: slow_report",
            task=f"{DEMO}.slow_report",
            crontab=CrontabSchedule.objects.create(minute="0", hour="7"),
        ),
    )
    staff_user("ada", ops, "view_taskrun", "start_task")
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/ops/")

    expect(page.locator("#nav-sidebar")).to_have_count(0)
    description = page.locator("#task-list tbody td").first
    assert (description.bounding_box() or {"width": 0})["width"] >= 300
    for row in page.locator("#task-list tbody tr").all():
        assert (row.bounding_box() or {"height": 999})["height"] <= 90  # three lines at most
    scheduled = page.locator("#task-list .ts-badge")
    expect(scheduled).to_have_count(1)
    badge_row = page.locator("#task-list tbody tr", has=page.locator(".ts-badge"))
    expect(badge_row).to_contain_text("slow_report")
    scheduled.click()
    expect(page.locator("#schedules")).to_be_in_viewport()


def test_every_page_has_an_icon(page: Page, production_server: Any, ops: Application) -> None:
    missing: list[str] = []
    page.on("response", lambda response: response.status == 404 and missing.append(response.url))
    icon = page.request.get(f"{production_server.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
    staff_user("ada", ops, "view_taskrun")
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/ops/")
    page.wait_for_load_state("networkidle")
    assert page.locator("link[rel=icon]").count() == 1
    assert missing == []
