"""What a task handler reports about the runs it takes: started, finished, skipped, progress."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lime_task.status import Origin, State
from limepkg_task_starter import selectors
from limepkg_task_starter.models import TaskRun
from limepkg_task_starter.services.run_rows import run_update

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


def run_mark_started(*, started: StartedRun, at: datetime) -> None:
    changes: dict[str, Any] = {"status": State.STARTED, "started_at": at, "worker": started.worker}
    if started.queue:
        changes["queue"] = started.queue
    if run_update(started.task_id, changes):
        return
    # Sent by something other than send_task (the scheduler, plain Celery): record it now.
    if started.application_name is None:
        logger.warning(
            "Task %s [%s] names no application; not recorded", started.task_name, started.task_id
        )
        return
    if selectors.application_settings(name=started.application_name) is None:
        logger.warning(
            "Task %s [%s]: unknown application %r; not recorded",
            started.task_name,
            started.task_id,
            started.application_name,
        )
        return
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


def run_mark_finished(
    *,
    task_id: str,
    status: State,
    at: datetime,
    result: Any = None,
    error_type: str = "",
    traceback: str = "",
    reason: str = "",
) -> None:
    changes = {
        "status": status,
        "result": result,
        "error_type": error_type,
        "traceback": traceback,
        "reason": reason,
        "finished_at": at,
    }
    run_update(task_id, changes, announce=True)


SKIPPED = "Skipped: the task is disabled in the application configuration."


def run_mark_skipped(*, task_id: str, at: datetime) -> None:
    changes = {"status": State.REVOKED, "skipped": True, "reason": SKIPPED, "finished_at": at}
    run_update(task_id, changes, announce=True)


def run_set_progress(*, task_id: str, done: int, total: int, message: str = "") -> None:
    TaskRun.objects.filter(id=task_id).update(
        progress_done=max(done, 0), progress_total=max(total, 0), progress_message=message[:255]
    )
