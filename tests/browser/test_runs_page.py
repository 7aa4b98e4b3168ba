"""The runs page in headless Chromium, against gunicorn with DEBUG off and a real task handler:
runs arriving live, filters, cancelling a running task, retrying failed runs together, and the
page on a phone."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from lime_task.status import Origin
from limepkg_task_starter.models import Application, TaskRun
from limepkg_task_starter.services import starting
from tests.browser.conftest import log_in, staff_user
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.browser
DEMO = "solution_demo.tasks.my_tasks"
TASKS = [f"{DEMO}.dummy_task", f"{DEMO}.slow_report", f"{DEMO}.broken_import"]


@pytest.fixture
def ops(transactional_db: None) -> Application:
    return Application.objects.create(name="ops", config={"limepkg_task_starter": {"tasks": TASKS}})


def start(user: User, application: Application, task: str, arguments: Any) -> TaskRun:
    """A run started elsewhere (here: the API's way in), not on the page being watched."""
    return starting.run_start(
        actor=user,
        application=application,
        task_name=f"{DEMO}.{task}",
        arguments=arguments,
        run_as=starting.RunAs.ACTOR,
        origin=Origin.API,
    )


def runs_url(server: Any, query: str = "") -> str:
    return f"{server.url}/admin/task-starter/ops/runs/{query}"


def test_runs_arrive_live_filter_and_a_running_one_is_cancelled(
    page: Page, production_server: Any, worker: WorkerProcess, ops: Application
) -> None:
    ada = staff_user("ada", ops, "view_taskrun", "start_task", "cancel_run")
    log_in(page, production_server, "ada")
    page.goto(runs_url(production_server))
    expect(page.locator("#runs")).to_contain_text("No runs yet.")

    quick = start(ada, ops, "dummy_task", {"number": 2, "numberx": 3})
    slow = start(ada, ops, "slow_report", {"steps": 60, "seconds_per_step": 0.5})
    # Both appear, and move on, without a reload.
    expect(page.locator(f"#run-{quick.id} .ts-result")).to_have_text("30", timeout=20_000)
    expect(page.locator(f"#run-{slow.id} .ts-status")).to_have_text("Started", timeout=20_000)
    expect(page.locator(".ts-counts")).to_contain_text("1 running")
    expect(page.locator(f"#run-{slow.id}")).to_contain_text('{"steps": 60')

    # A change of status is announced to screen readers, not only redrawn.
    waiting = TaskRun.objects.create(
        id="announced-run",
        application=ops,
        task_name=f"{DEMO}.dummy_task",
        status="PENDING",
        origin=Origin.CODE,
        created_at=timezone.now(),
    )
    expect(page.locator(f"#run-{waiting.id} .ts-status")).to_have_text("Pending", timeout=10_000)
    TaskRun.objects.filter(id=waiting.id).update(status="SUCCESS", result=1)
    expect(page.locator("#ts-announcer")).to_have_text("dummy_task: Success", timeout=10_000)
    TaskRun.objects.filter(id=waiting.id).delete()

    page.select_option("#filter-status", "SUCCESS")
    page.click("text=Filter")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(page.locator(f"#run-{quick.id}")).to_be_visible()
    page.click("text=Clear")

    # The action menu stays open through the live refreshes, and Escape closes it.
    menu = page.locator(f"#run-{slow.id} details.ts-menu")
    menu.locator("summary").click()
    page.wait_for_timeout(2_500)  # at least one refresh of the table
    expect(menu.locator("text=Cancel…")).to_be_visible()
    page.keyboard.press("Escape")
    expect(menu.locator("text=Cancel…")).to_be_hidden()

    menu.locator("summary").click()
    menu.locator("text=Cancel…").click()
    expect(page.locator("h1")).to_have_text("Cancel this run?")
    expect(page.locator(".ts-confirm")).to_contain_text("It is running")
    expect(page.locator(".ts-confirm")).to_contain_text("slow_report")
    page.get_by_role("button", name="Cancel the run").click()
    cancelled = time.monotonic()

    expect(page.locator(".messagelist")).to_contain_text("Cancelled slow_report.")
    expect(page.locator(f"#run-{slow.id} .ts-status")).to_have_text("Cancelled")
    # Its task handler stops it within 5 s, on every broker (the embedded one included).
    run = wait_for(
        lambda: (found := TaskRun.objects.get(id=slow.id)).later_reports and found,
        max(0.1, 5 - (time.monotonic() - cancelled)),
        what="the task handler to confirm it stopped the run",
    )
    assert "stopped it" in run.later_reports and run.cancelled_by == ada
    assert run.progress_done is None or run.progress_done < 60
    page.wait_for_timeout(2_000)  # a step is 0.5 s: a task still running would move on
    assert TaskRun.objects.get(id=slow.id).progress_done == run.progress_done
    expect(page.locator(f"#run-{slow.id} .ts-status")).to_have_text("Cancelled")


def test_failed_runs_are_retried_together_after_a_confirmation(
    page: Page, production_server: Any, worker: WorkerProcess, ops: Application
) -> None:
    ada = staff_user("ada", ops, "view_taskrun", "start_task")
    failed = [start(ada, ops, "broken_import", {"path": f"/nonexistent/{n}.csv"}) for n in (1, 2)]
    wait_for(
        lambda: (
            TaskRun.objects.filter(id__in=[r.id for r in failed], status="FAILURE").count() == 2
        ),
        20,
        what="both imports to fail",
    )
    log_in(page, production_server, "ada")
    page.goto(runs_url(production_server))
    # The failure explains itself in its row, without the traceback permission.
    expect(page.locator(f"#run-{failed[0].id} .ts-result")).to_contain_text(
        "FileNotFoundError: [Errno 2] No such file or directory"
    )

    for run in failed:
        page.check(f"#run-{run.id} input[name=run]")
    page.wait_for_timeout(2_500)  # the ticks survive a live refresh
    page.click("text=Retry selected failed runs")
    expect(page.locator("h1")).to_have_text("Retry 2 runs?")
    expect(page.locator(".ts-confirm")).to_contain_text("/nonexistent/2.csv")
    page.get_by_role("button", name="Retry 2 runs").click()

    expect(page.locator(".messagelist")).to_contain_text("Started 2 runs again:")
    expect(page.locator("#runs tbody tr")).to_have_count(4, timeout=10_000)
    reruns = TaskRun.objects.filter(rerun_of__in=failed)
    assert sorted(run.arguments["path"] for run in reruns) == [
        "/nonexistent/1.csv",
        "/nonexistent/2.csv",
    ]
    # Each retry is linked from the message, and its row is marked where the page lands.
    for rerun in reruns:
        expect(page.locator(f".messagelist a[href$='/runs/{rerun.id}/']")).to_be_visible()
    expect(page.locator("tr.ts-run.ts-new")).to_have_count(1)

    # The retries fail too: each original says where it went, cannot be ticked again, and the
    # day's failures count the retries only.
    for run in failed:
        retry = reruns.get(rerun_of=run)
        expect(page.locator(f"#run-{retry.id} .ts-status")).to_have_text("Failure", timeout=20_000)
        row = page.locator(f"#run-{run.id}")
        expect(row.locator(".ts-lineage")).to_contain_text(f"Retried → {retry.id[:8]} Failure")
        expect(row.locator("input[name=run]")).to_have_count(0)
        expect(page.locator(f"#run-{retry.id} input[name=run]")).to_have_count(1)
    expect(page.locator(".ts-counts")).to_contain_text("2 failed in the last 24 h")

    page.locator(f"#run-{failed[0].id} .ts-lineage a").click()
    retry = reruns.get(rerun_of=failed[0])
    expect(page.locator(".ts-info")).to_contain_text(f"Run again of {failed[0].id}")
    expect(page.locator("h1")).to_contain_text("broken_import")
    assert page.url.endswith(f"/runs/{retry.id}/")


def test_one_box_ticks_every_failed_run_and_retry_waits_for_a_tick(
    page: Page, production_server: Any, ops: Application
) -> None:
    staff_user("ada", ops, "view_taskrun", "start_task")
    failed = [
        TaskRun.objects.create(
            id=f"failed-{n}",
            application=ops,
            task_name=f"{DEMO}.broken_import",
            status="FAILURE",
            arguments={"path": f"/nonexistent/{n}.csv"},
            origin=Origin.API,
            created_at=timezone.now(),
        )
        for n in (1, 2)
    ]
    log_in(page, production_server, "ada")
    page.goto(runs_url(production_server))
    retry, every = page.locator("#retry-selected"), page.locator("#select-failed")
    boxes = [page.locator(f"#run-{run.id} input[name=run]") for run in failed]
    expect(retry).to_be_disabled()

    every.check()
    for box in boxes:
        expect(box).to_be_checked()
    expect(retry).to_be_enabled()
    expect(page.locator("#selected-count")).to_have_text("2 selected")
    page.wait_for_timeout(2_500)  # a live refresh keeps the ticks and the state of the button
    expect(every).to_be_checked()
    expect(retry).to_be_enabled()

    boxes[0].uncheck()
    assert every.evaluate("box => box.indeterminate")
    boxes[1].uncheck()
    expect(retry).to_be_disabled()
    expect(every).not_to_be_checked()

    every.check()
    retry.click()
    expect(page.locator("h1")).to_have_text("Retry 2 runs?")


def test_an_argument_search_typed_in_the_search_box_finds_the_matching_run_only(
    page: Page, production_server: Any, ops: Application
) -> None:
    staff_user("ada", ops, "view_taskrun")
    made = {
        name: TaskRun.objects.create(
            id=f"search-{name}",
            application=ops,
            task_name=f"{DEMO}.dummy_task",
            status="SUCCESS",
            origin=Origin.PAGE,
            arguments=arguments,
            created_at=timezone.now(),
        )
        for name, arguments in {
            "match": {"customer": {"id": 42}, "note": "first"},
            "other": {"customer": {"id": 7}, "note": "second"},
            "text": {"customer": "42"},
        }.items()
    }
    log_in(page, production_server, "ada")
    page.goto(runs_url(production_server))
    expect(page.locator("#runs tbody tr")).to_have_count(3)

    page.fill("#filter-q", "customer.id=42")
    page.press("#filter-q", "Enter")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    expect(page.locator(f"#run-{made['match'].id}")).to_be_visible()
    expect(page.locator("#filter-q")).to_have_value("customer.id=42")
    # The live part keeps to the search as it polls.
    page.wait_for_timeout(2_500)
    expect(page.locator("#runs tbody tr")).to_have_count(1)

    page.fill("#filter-q", 'customer.id=42 note="first')
    page.press("#filter-q", "Enter")
    expect(page.locator("#id_q_error")).to_contain_text("A quote is not closed")
    expect(page.locator("#filter-q")).to_have_value('customer.id=42 note="first')
