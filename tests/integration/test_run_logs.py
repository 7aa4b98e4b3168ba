"""A real task handler keeps each run's own log lines with the run, live and in full."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lime_task import LimeApplication, send_task
from limepkg_task_starter.models import RunLog, TaskRun
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration
CHATTY = "tests.reference_solution.tasks.my_task_file.chatty"


def finished(*run_ids: str, timeout: float = 60) -> list[TaskRun]:
    return wait_for(
        lambda: (
            (runs := list(TaskRun.objects.filter(id__in=run_ids, finished_at__isnull=False)))
            and len(runs) == len(run_ids)
            and runs
        ),
        timeout,
        what=f"runs {run_ids} to finish",
    )


def log_lines(run_id: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in RunLog.objects.get(run_id=run_id).text.splitlines()]


def assert_each_run_keeps_only_its_own(app: LimeApplication, **route: str) -> None:
    # Both at once, interleaving their lines in one handler (two pool processes or threads).
    first = send_task(CHATTY, app, "first", 6, 0.2, **route)
    second = send_task(CHATTY, app, "second", 6, 0.2, **route)
    finished(first.id, second.id)

    assert log_lines(first.id) == [f"first line {n}" for n in range(1, 7)]
    assert log_lines(second.id) == [f"second line {n}" for n in range(1, 7)]
    log = RunLog.objects.get(run_id=first.id)
    # INFO and above by default: the DEBUG lines are not kept; the handler's own lines neither.
    assert (log.lines, log.dropped) == (6, 0)
    assert "debug" not in log.text and "succeeded" not in log.text


def test_two_runs_in_prefork_pool_processes_keep_their_own_lines(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    assert_each_run_keeps_only_its_own(live_demo_app)


def test_two_runs_in_threads_of_one_process_keep_their_own_lines(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    # On a queue of its own, so that the threads handler is the one that runs them.
    threads = own_worker(pool="threads", concurrency=2, queues="run_logs_threads")
    assert_each_run_keeps_only_its_own(live_demo_app, __queue="run_logs_threads")
    assert set(TaskRun.objects.values_list("worker", flat=True)) == {threads.hostname}


def test_the_log_is_readable_while_the_run_goes_on(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(CHATTY, live_demo_app, "slow", 12, 0.5)
    # Written about once a second while it runs: some lines, before the run has ended.
    partial = wait_for(
        lambda: (
            (log := RunLog.objects.filter(run_id=sent.id).first()) and 0 < log.lines < 12 and log
        ),
        20,
        what="part of the log while the run goes on",
    )
    assert TaskRun.objects.get(id=sent.id).finished_at is None
    assert partial.text.splitlines()[0].endswith("slow line 1")
    finished(sent.id)
    assert RunLog.objects.get(run_id=sent.id).lines == 12


def test_a_failed_run_keeps_what_it_logged_before_failing(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(CHATTY, live_demo_app, "doomed", 3, 0.0, True)
    (run,) = finished(sent.id)
    assert run.status == "FAILURE"
    assert log_lines(sent.id) == ["doomed line 1", "doomed line 2", "doomed line 3"]


def test_a_long_log_keeps_its_first_and_last_lines_and_says_how_many_were_dropped(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    own_worker(env={"LIME_TASKS_RUN_LOG_MAX_BYTES": "4096"}, queues="run_logs_small")
    sent = send_task(CHATTY, live_demo_app, "long", 500, __queue="run_logs_small")
    finished(sent.id)
    log = RunLog.objects.get(run_id=sent.id)
    lines = log.text.splitlines()
    assert log.lines == 500 and log.dropped > 400
    assert lines[0].endswith("long line 1") and lines[-1].endswith("long line 500")
    assert f"… {log.dropped} lines dropped …" in lines
    assert len(log.text.encode()) <= 4096 + 100
