from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from lime_task.status import State
from limepkg_task_starter.models import Application, TaskRun, WorkerHeartbeat
from limepkg_task_starter.services.maintenance import (
    run_reconcile,
    runs_purge_expired,
    worker_heartbeat,
)
from limepkg_task_starter.services.worker import run_mark_finished, run_mark_started
from tests.limepkg_task_starter.conftest import started_on

pytestmark = pytest.mark.django_db
NOW = timezone.now()


def run(application: Application, status: str, *, age: float, worker: str = "") -> TaskRun:
    at = NOW - timedelta(seconds=age)
    return TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=application,
        task_name="t",
        status=status,
        worker=worker,
        queue="lime_default_task_queue",
        created_at=at,
        started_at=at if status == "STARTED" else None,
    )


def reconcile():
    return run_reconcile(worker_lost_after=60, pending_timeout=3600, now=NOW)


def test_started_on_a_silent_worker_ends_as_failure(demo_application) -> None:
    worker_heartbeat(hostname="dead@host", at=NOW - timedelta(seconds=120))
    lost = run(demo_application, "STARTED", age=300, worker="dead@host")

    assert reconcile().worker_lost == 1
    lost.refresh_from_db()
    assert lost.status == "FAILURE"
    assert "stopped responding" in lost.reason
    assert lost.finished_at == NOW


def test_started_on_a_live_worker_is_left_alone(demo_application) -> None:
    worker_heartbeat(hostname="alive@host", at=NOW - timedelta(seconds=5))
    busy = run(demo_application, "STARTED", age=3000, worker="alive@host")

    assert reconcile().worker_lost == 0
    busy.refresh_from_db()
    assert busy.status == "STARTED"


def test_a_just_started_run_is_not_judged_before_its_worker_could_beat(demo_application) -> None:
    fresh = run(demo_application, "STARTED", age=5, worker="new@host")
    assert reconcile().worker_lost == 0
    assert TaskRun.objects.get(id=fresh.id).status == "STARTED"


def test_pending_never_picked_up_ends_with_the_queue_named(demo_application) -> None:
    stuck = run(demo_application, "PENDING", age=4000)
    recent = run(demo_application, "PENDING", age=10)

    assert reconcile().never_started == 1
    stuck.refresh_from_db()
    assert stuck.status == "FAILURE"
    assert stuck.reason.endswith("queue lime_default_task_queue?)")
    assert TaskRun.objects.get(id=recent.id).status == "PENDING"


def test_heartbeat_updates_in_place(db: None) -> None:
    worker_heartbeat(hostname="w@h", at=NOW - timedelta(seconds=10))
    worker_heartbeat(hostname="w@h", at=NOW)
    assert list(WorkerHeartbeat.objects.values_list("hostname", "last_seen")) == [("w@h", NOW)]


def test_purge_deletes_only_expired_finished_runs_in_batches(demo_application) -> None:
    expired = [run(demo_application, "SUCCESS", age=100) for _ in range(5)]
    still_open = run(demo_application, "STARTED", age=100, worker="w")
    kept = run(demo_application, "SUCCESS", age=1)

    deleted = runs_purge_expired(older_than=NOW - timedelta(seconds=50), batch_size=2)

    assert deleted == len(expired)
    assert set(TaskRun.objects.values_list("id", flat=True)) == {still_open.id, kept.id}


# --- Reports that come after the outcome was decided without their worker -------------------


def _started(run_: TaskRun, worker: str) -> None:
    run_mark_started(started=started_on(run_, worker), at=timezone.now())


def test_a_reconciled_run_its_worker_finishes_after_all_says_both(demo_application) -> None:
    worker_heartbeat(hostname="cut@host", at=NOW - timedelta(seconds=120))
    lost = run(demo_application, "STARTED", age=300, worker="cut@host")
    reconcile()
    finished = NOW + timedelta(seconds=30)

    run_mark_finished(
        task_id=lost.id, status=State.SUCCESS, at=finished, result=42, worker="cut@host"
    )

    lost.refresh_from_db()
    assert (lost.status, lost.result, lost.finished_at) == ("SUCCESS", 42, finished)
    assert lost.reconciled_at == NOW
    assert "stopped responding for more than 60 s" in lost.later_reports
    assert "Then cut@host reported it SUCCESS" in lost.later_reports


def test_a_report_from_a_worker_that_ran_a_redelivered_message_is_kept_aside(
    demo_application,
) -> None:
    twice = run(demo_application, "STARTED", age=30, worker="first@host")
    _started(twice, "second@host")  # the broker gave the message to another worker
    run_mark_finished(
        task_id=twice.id, status=State.SUCCESS, at=NOW, result=1, worker="second@host"
    )

    run_mark_finished(
        task_id=twice.id, status=State.FAILURE, at=NOW, error_type="X", worker="first@host"
    )
    _started(twice, "third@host")  # a stale start after the run finished elsewhere

    twice.refresh_from_db()
    assert (twice.status, twice.result, twice.worker) == ("SUCCESS", 1, "second@host")
    reports = twice.later_reports.splitlines()
    assert reports[0].startswith("first@host also ran it") and "FAILURE" in reports[0]
    assert reports[1].startswith("third@host started it again")


def test_the_usual_report_is_one_statement_and_leaves_no_later_report(
    demo_application, django_assert_num_queries
) -> None:
    usual = run(demo_application, "STARTED", age=3, worker="one@host")
    with django_assert_num_queries(1):
        run_mark_finished(task_id=usual.id, status=State.SUCCESS, at=NOW, worker="one@host")
    usual.refresh_from_db()
    assert usual.status == "SUCCESS" and usual.later_reports == ""
