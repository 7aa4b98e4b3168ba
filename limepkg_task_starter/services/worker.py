"""What a task handler reports about the runs it takes: started, finished, skipped, progress."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import transaction

from lime_task.status import Origin, State
from lime_task.storable import storable_text
from limepkg_task_starter import selectors
from limepkg_task_starter.models import TaskRun
from limepkg_task_starter.services.run_rows import (
    FINISHED_BY_ITS_WORKER,
    STARTED_UNLESS_FINISHED_ELSEWHERE,
    run_update,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartedRun:
    task_id: str
    task_name: str
    application_name: str | None
    run_as: str
    language: str
    args: list[Any]
    kwargs: dict[str, Any]
    worker: str
    queue: str
    scheduled: bool


def run_mark_started(*, started: StartedRun, at: datetime) -> bool:
    """Record that a worker started the run; False when it was cancelled and must not run."""
    changes: dict[str, Any] = {"status": State.STARTED, "started_at": at, "worker": started.worker}
    if started.queue:
        changes["queue"] = started.queue
    if run_update(
        started.task_id,
        changes,
        condition=STARTED_UNLESS_FINISHED_ELSEWHERE,
        worker=started.worker,
    ):
        return True
    recorded = TaskRun.objects.filter(id=started.task_id).values_list("cancelled_at").first()
    if recorded is not None:
        if recorded[0] is not None:
            return False  # cancelled while it waited
        # Another worker finished it: this one was handed the message again.
        _add_later_report(started.task_id, ALSO_STARTED.format(worker=started.worker, at=_when(at)))
        return True
    # Sent by something other than send_task (the scheduler, plain Celery): record it now.
    if started.application_name is None:
        logger.warning(
            "Task %s [%s] names no application; not recorded", started.task_name, started.task_id
        )
        return True
    if selectors.application_settings(name=started.application_name) is None:
        logger.warning(
            "Task %s [%s]: unknown application %r; not recorded",
            started.task_name,
            started.task_id,
            started.application_name,
        )
        return True
    TaskRun.objects.create(
        id=started.task_id,
        application_id=started.application_name,
        task_name=started.task_name,
        args=started.args,
        kwargs=started.kwargs,
        status=State.STARTED,
        origin=Origin.SCHEDULE if started.scheduled else Origin.CODE,
        run_as=started.run_as,
        language=started.language,
        queue=started.queue,
        worker=started.worker,
        created_at=at,
        started_at=at,
    )
    return True


# What the record is told after the run's outcome was decided without the reporting worker.
RECONCILED_THEN_FINISHED = (
    "Ended at {reconciled} for its worker: {verdict} Then {worker} reported it {status} "
    "at {at}; that is the outcome recorded."
)
ALSO_FINISHED = (
    "{worker} also ran it (the broker delivered it again) and reported {status} at {at}; "
    "the outcome recorded is {recorded_worker}'s."
)
ALSO_STARTED = "{worker} started it again at {at}, after another worker had finished it."
STOPPED_AFTER_CANCEL = "{worker} stopped it at {at}."
FINISHED_BEFORE_CANCEL = (
    "Cancelled at {cancelled}, but {worker} had already finished it: {status} at {at}; that "
    "is the outcome recorded."
)
FINISHED_DESPITE_CANCEL = (
    "Cancelled at {cancelled}, but {worker} did not stop it: it went on and finished {status} "
    "at {at}, {seconds:.1f} s later; that is the outcome recorded."
)


def run_mark_finished(
    *,
    task_id: str,
    status: State,
    at: datetime,
    result: Any = None,
    error_type: str = "",
    error_message: str = "",
    traceback: str = "",
    reason: str = "",
    worker: str = "",
) -> None:
    """Record how a run ended, as ``worker`` reports it.

    Usually one conditional UPDATE. A report on a run that was ended for a lost worker, or that
    another worker holds, is kept as well: the first becomes the outcome (it is what happened)
    and says what the reconciler had decided; the second is added to the later reports.
    """
    changes = {
        "status": status,
        "result": result,
        "error_type": error_type,
        "error_message": error_message,
        "traceback": traceback,
        "reason": reason,
        "finished_at": at,
    }
    if run_update(task_id, changes, announce=True, condition=FINISHED_BY_ITS_WORKER, worker=worker):
        return
    run = TaskRun.objects.filter(id=task_id).first()
    if run is None:
        return
    if run.cancelled_at is not None:
        if status == State.REVOKED:
            _add_later_report(task_id, STOPPED_AFTER_CANCEL.format(worker=worker, at=_when(at)))
            return
        note = _finished_after_cancel(run.cancelled_at, worker=worker, status=status, at=at)
        changes["later_reports"] = _joined(run.later_reports, note)
        run_update(task_id, changes, announce=True)
        return
    if run.reconciled_at is not None and run.worker in (worker, ""):
        note = RECONCILED_THEN_FINISHED.format(
            reconciled=_when(run.reconciled_at),
            verdict=run.reason,
            worker=worker or "its worker",
            status=status,
            at=_when(at),
        )
        changes["later_reports"] = _joined(run.later_reports, note)
        run_update(task_id, changes, announce=True)
        logger.warning("Run %s: %s", task_id, note)
        return
    note = ALSO_FINISHED.format(
        worker=worker, status=status, at=_when(at), recorded_worker=run.worker
    )
    _add_later_report(task_id, note)


def _finished_after_cancel(cancelled: datetime, *, worker: str, status: State, at: datetime) -> str:
    """What the record adds when a cancelled run's worker reports it finished: before the
    cancel (the two crossed), or after it (the worker did not stop it)."""
    if at <= cancelled:
        return FINISHED_BEFORE_CANCEL.format(
            cancelled=_when(cancelled), worker=worker, status=status, at=_when(at)
        )
    return FINISHED_DESPITE_CANCEL.format(
        cancelled=_when(cancelled),
        worker=worker,
        status=status,
        at=_when(at),
        seconds=(at - cancelled).total_seconds(),
    )


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _joined(reports: str, note: str) -> str:
    return f"{reports}\n{note}" if reports else note


def _add_later_report(task_id: str, note: str) -> None:
    with transaction.atomic():
        run = TaskRun.objects.select_for_update().filter(id=task_id).first()
        if run is not None:
            run.later_reports = _joined(run.later_reports, note)
            run.save(update_fields=["later_reports"])
    logger.warning("Run %s: %s", task_id, note)


SKIPPED = "Skipped: the task is disabled in the application configuration."


def run_mark_skipped(*, task_id: str, at: datetime) -> None:
    changes = {"status": State.REVOKED, "skipped": True, "reason": SKIPPED, "finished_at": at}
    run_update(task_id, changes, announce=True)


def _count(value: Any) -> int:
    try:
        return min(max(int(value), 0), MAX_PROGRESS)
    except (TypeError, ValueError, OverflowError):  # NaN, an infinity, not a number
        return 0


# The largest count the progress columns keep on every database (a 32-bit signed integer).
MAX_PROGRESS = 2**31 - 1


def run_set_progress(*, task_id: str, done: int, total: int, message: str = "") -> None:
    """Record how far a run has come; counts are clamped and the message made storable, so a
    task's progress report never fails the task."""
    TaskRun.objects.filter(id=task_id).update(
        progress_done=_count(done),
        progress_total=_count(total),
        progress_message=storable_text(str(message))[:255],
    )
