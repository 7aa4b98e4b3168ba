"""The runs page over its whole filter in headless Chromium, against gunicorn with DEBUG off:
"Retry all N failed runs matching" over more runs than one page shows, its progress followed
live, and Export CSV downloading what the filter matches."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from lime_task.status import Origin
from limepkg_task_starter.models import Application, AuditEntry, BulkAction, TaskRun
from limepkg_task_starter.selectors import RUNS_PER_PAGE
from tests.browser.conftest import log_in, read_csp_violations, staff_user

pytestmark = pytest.mark.browser
DEMO = "solution_demo.tasks.my_tasks"
TASKS = [f"{DEMO}.dummy_task", f"{DEMO}.slow_report", f"{DEMO}.broken_import"]
MORE_THAN_A_PAGE = RUNS_PER_PAGE + 15


@pytest.fixture
def ops(transactional_db: None) -> Application:
    return Application.objects.create(name="ops", config={"limepkg_task_starter": {"tasks": TASKS}})


def add_run(application: Application, *, minutes_ago: float, **values: Any) -> TaskRun:
    defaults: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "application": application,
        "task_name": f"{DEMO}.broken_import",
        "status": "FAILURE",
        "error_type": "builtins.FileNotFoundError",
        "error_message": "No such file",
        "run_as": "ada",
        "origin": Origin.API,
        "created_at": timezone.now() - timedelta(minutes=minutes_ago),
    }
    return TaskRun.objects.create(**(defaults | values))


@pytest.fixture
def failed_imports(ops: Application) -> list[TaskRun]:
    """More failed imports than one page of runs, and failures of another task besides."""
    runs = [
        add_run(ops, minutes_ago=n, arguments={"path": f"/nonexistent/{n}.csv"})
        for n in range(MORE_THAN_A_PAGE)
    ]
    for n in range(3):
        add_run(ops, minutes_ago=n, task_name=f"{DEMO}.dummy_task", arguments={"number": n})
    return runs


def test_retry_all_failed_runs_matching_a_filter_of_more_than_one_page(
    page: Page, production_server: Any, failed_imports: list[TaskRun], csp_violations: list[str]
) -> None:
    ops = failed_imports[0].application
    staff_user("ada", ops, "view_taskrun", "start_task", "cancel_run")
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/ops/runs/")
    page.select_option("#filter-task", f"{DEMO}.broken_import")
    page.select_option("#filter-status", "FAILURE")
    page.click("text=Filter")
    expect(page.locator("#runs tbody tr")).to_have_count(RUNS_PER_PAGE)
    expect(page.get_by_role("link", name="Older runs ›")).to_be_visible()  # more than a page

    page.get_by_role("link", name=f"Retry all {MORE_THAN_A_PAGE} failed runs matching").click()
    expect(page.locator("h1")).to_have_text(f"Retry all {MORE_THAN_A_PAGE} failed runs matching?")
    expect(page.locator(".ts-bulk-filter")).to_have_text("Status: Failure · Task: broken_import")
    page.get_by_role("button", name=f"Retry {MORE_THAN_A_PAGE} runs").click()

    # In the background, followed live on the progress page.
    expect(page.locator(".ts-bulk-state")).to_contain_text(
        f"Done. {MORE_THAN_A_PAGE} of {MORE_THAN_A_PAGE}: {MORE_THAN_A_PAGE} retried, 0 refused",
        timeout=30_000,
    )
    retried = TaskRun.objects.filter(rerun_of__isnull=False)
    assert sorted(retried.values_list("rerun_of_id", flat=True)) == sorted(
        run.id for run in failed_imports
    )
    assert set(retried.values_list("task_name", flat=True)) == {f"{DEMO}.broken_import"}
    action = BulkAction.objects.get()
    assert AuditEntry.objects.get(action="bulk_retry").arguments["runs"] == [
        run.id for run in failed_imports
    ]
    assert action.actor_username == "ada"

    # Back on the runs page, the filter kept: nothing left to retry, and the action noted.
    page.get_by_role("link", name="Back to the runs").click()
    expect(page.locator("#filter-task")).to_have_value(f"{DEMO}.broken_import")
    expect(page.locator(".ts-bulk-note")).to_contain_text(
        "Retry failed runs matching Status: Failure · Task: broken_import: done, "
        f"{MORE_THAN_A_PAGE} of {MORE_THAN_A_PAGE} retried."
    )
    # None of the runs retried is offered again. (Their retries may themselves have failed by
    # now, when a task handler runs them: broken_import always fails. Those are new runs, and
    # "Retry all" may rightly offer them.)
    retry_all = page.locator("#retry-all")
    if retry_all.count():
        offered = int(retry_all.inner_text().split()[2].rstrip("+"))
        assert offered <= TaskRun.objects.filter(rerun_of__isnull=False, status="FAILURE").count()
    assert not TaskRun.objects.filter(
        id__in=[run.id for run in failed_imports], reruns__isnull=True
    ).exists()
    assert read_csp_violations(page) == []


def test_export_csv_downloads_what_the_filter_matches(
    page: Page, production_server: Any, failed_imports: list[TaskRun]
) -> None:
    ops = failed_imports[0].application
    add_run(ops, minutes_ago=0, task_name=f"{DEMO}.dummy_task", error_message="=cmd|' /C calc'!A0")
    staff_user("ada", ops, "view_taskrun")
    log_in(page, production_server, "ada")
    page.goto(f"{production_server.url}/admin/task-starter/ops/runs/?task={DEMO}.dummy_task")
    link = page.get_by_role("link", name="Export CSV")
    export = f"/admin/task-starter/ops/runs/export.csv?task={DEMO}.dummy_task"
    expect(link).to_have_attribute("href", export)
    with page.expect_download() as download:
        link.click()
    file = download.value
    assert file.suggested_filename.startswith("runs-ops-") and file.suggested_filename.endswith(
        ".csv"
    )
    text = open(file.path(), encoding="utf-8-sig").read()  # noqa: SIM115
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    assert {row["task"] for row in rows} == {f"{DEMO}.dummy_task"}
    assert rows[0]["error message"] == "'=cmd|' /C calc'!A0"
