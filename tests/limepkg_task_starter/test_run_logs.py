"""Run logs: what is kept of a run's lines, and who sees them on View info and in the API."""

from __future__ import annotations

import pytest
from django.test import Client

from limepkg_task_starter.models import Application, RunLog, TaskRun
from limepkg_task_starter.run_logs import RunLogBuffer, RunLogStore
from limepkg_task_starter.services.run_logs import run_log_save
from tests.limepkg_task_starter.conftest import make_user


def test_a_buffer_keeps_the_first_and_the_last_lines_within_its_size() -> None:
    buffer = RunLogBuffer(max_bytes=200)
    for number in range(1, 101):
        buffer.add(f"line {number:03}")  # 8 bytes and a newline each
    lines = buffer.text().splitlines()
    assert lines[:11] == [f"line {n:03}" for n in range(1, 12)]
    assert lines[-11:] == [f"line {n:03}" for n in range(90, 101)]
    assert lines[11] == f"… {buffer.dropped} lines dropped …"
    assert (buffer.lines, buffer.dropped) == (100, 78)


def test_a_line_longer_than_half_the_size_keeps_its_start() -> None:
    buffer = RunLogBuffer(max_bytes=1024)
    buffer.add("x" * 5000)
    (line,) = buffer.text().splitlines()
    assert line.endswith("…") and len(line.encode()) < 512


def test_the_line_filter_can_redact_or_leave_out_a_line() -> None:
    store = RunLogStore()
    store.line_filter = lambda line: None if "skip" in line else line.replace("s3cret", "***")
    store.buffers["run"] = RunLogBuffer(1024)
    for line in ("password=s3cret", "skip me", "plain"):
        store.add("run", line)
    assert store.buffers["run"].text() == "password=***\nplain"


@pytest.mark.django_db
def test_a_log_is_kept_as_the_database_can_keep_it_and_only_for_a_recorded_run(
    a_run: TaskRun,
) -> None:
    assert run_log_save(run_id=a_run.id, text="a\x00b", lines=1, dropped=0)
    assert RunLog.objects.get(run=a_run).text == "a\\x00b"
    assert not run_log_save(run_id="no-such-run", text="x", lines=1, dropped=0)


@pytest.mark.django_db
def test_view_info_shows_the_log_to_those_who_may_see_tracebacks(
    a_run: TaskRun, pages_application: Application
) -> None:
    RunLog.objects.create(run=a_run, text="INFO step one\nINFO step <two>", lines=9, dropped=7)
    page = f"/admin/task-starter/runs/{a_run.id}/"
    viewer = Client()
    viewer.force_login(make_user("viewer", applications=(pages_application,), perms=("view",)))
    reader = Client()
    reader.force_login(
        make_user("reader", applications=(pages_application,), perms=("view", "traceback"))
    )

    shown = reader.get(page).content.decode()
    assert "INFO step &lt;two&gt;" in shown
    assert "9 lines; 7 between the first and the last kept were dropped" in shown
    hidden = viewer.get(page).content.decode()
    assert "step one" not in hidden and "You may not see run logs." in hidden

    answer = reader.get(f"/api/v1/applications/{pages_application.name}/runs/{a_run.id}/log")
    assert answer.status_code == 200
    assert answer.json() == {
        "text": "INFO step one\nINFO step <two>",
        "lines": 9,
        "dropped": 7,
        "complete": True,
    }
    refused = viewer.get(f"/api/v1/applications/{pages_application.name}/runs/{a_run.id}/log")
    assert refused.status_code == 403


@pytest.mark.django_db
def test_a_log_goes_with_its_run(a_run: TaskRun) -> None:
    RunLog.objects.create(run=a_run, text="x", lines=1)
    a_run.delete()
    assert not RunLog.objects.exists()
