"""What a task handler reports about the runs it takes: started, finished, skipped, progress."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field

from lime_task.status import Origin, State
from limepkg_task_starter import selectors
from limepkg_task_starter.models import RUN_FINISHED_CHANNEL, TaskRun

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
    if _update_run(started.task_id, changes):
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
    _update_run(task_id, changes, announce=True)


SKIPPED = "Skipped: the task is disabled in the application configuration."


def run_mark_skipped(*, task_id: str, at: datetime) -> None:
    changes = {"status": State.REVOKED, "skipped": True, "reason": SKIPPED, "finished_at": at}
    _update_run(task_id, changes, announce=True)


def _update_run(task_id: str, changes: dict[str, Any], *, announce: bool = False) -> int:
    """UPDATE one run with a statement prepared once per set of columns; the number of rows.

    These writes sit between a task's message and its status showing, on every run: a plain
    statement costs a third of what ``QuerySet.update()`` builds each time. With ``announce``
    on PostgreSQL the same statement wakes whoever waits for the run
    (``lime_task.wait_for_status``) with NOTIFY, sent when it commits.
    """
    columns = tuple(changes)
    sql = _update_statement(connection.vendor, columns, announce)
    fields = _fields()
    values = [fields[name].get_db_prep_save(changes[name], connection) for name in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, task_id])
        if announce and connection.vendor == "postgresql":
            return len(cursor.fetchall())  # one notification per row updated
        return int(cursor.rowcount)


@cache
def _fields() -> dict[str, Field[Any, Any]]:
    return {field.name: field for field in TaskRun._meta.concrete_fields}


@cache
def _update_statement(vendor: str, columns: tuple[str, ...], announce: bool) -> str:
    quote = connection.ops.quote_name
    table = quote(TaskRun._meta.db_table)
    fields = _fields()
    assignments = ", ".join(f"{quote(str(fields[name].column))} = %s" for name in columns)
    update = f"UPDATE {table} SET {assignments} WHERE {quote('id')} = %s"
    if announce and vendor == "postgresql":
        return (
            f"WITH finished AS ({update} RETURNING {quote('id')}) "
            f"SELECT pg_notify('{RUN_FINISHED_CHANNEL}', {quote('id')}) FROM finished"
        )
    return update


def run_set_progress(*, task_id: str, done: int, total: int, message: str = "") -> None:
    TaskRun.objects.filter(id=task_id).update(
        progress_done=max(done, 0), progress_total=max(total, 0), progress_message=message[:255]
    )
