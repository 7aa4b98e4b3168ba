"""Runs of Django's task framework on backends other than ours, kept in the run history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from lime_task.status import Origin, State
from lime_task.storable import NotStorableError, storable_json, storable_text
from limepkg_task_starter.models import TaskRun

# The framework's statuses (TaskResultStatus values) as the history's.
FRAMEWORK_STATES = {
    "READY": State.PENDING,
    "RUNNING": State.STARTED,
    "SUCCESSFUL": State.SUCCESS,
    "FAILED": State.FAILURE,
}


def framework_run_get(*, run_id: str, application_name: str) -> TaskRun | None:
    if "\x00" in run_id:
        return None
    return TaskRun.objects.filter(id=run_id, application_id=application_name).first()


@transaction.atomic
def framework_run_record(
    *,
    application_name: str,
    run_id: str,
    task_name: str,
    status: State,
    args: list[Any],
    kwargs: dict[str, Any],
    enqueued_at: datetime | None,
    started_at: datetime | None,
    finished_at: datetime | None,
    worker: str,
    result: Any,
    errors: list[tuple[str, str]],
) -> None:
    """Write what the framework says of a run now; each signal brings the whole state."""
    reason = ""
    try:
        storable_json([args, kwargs], where="The arguments")
    except NotStorableError as error:
        args, kwargs, reason = [], {}, str(error)
    try:
        storable_json(result, where="The task's result")
    except NotStorableError as error:
        result, status, reason = None, State.FAILURE, str(error)
    error_type, traceback = errors[-1] if errors else ("", "")
    state = {
        "status": status,
        "started_at": started_at,
        "finished_at": finished_at,
        "worker": worker[:255],
        "result": result,
        "error_type": error_type[:255],
        "error_message": storable_text(traceback.strip().splitlines()[-1] if traceback else ""),
        "traceback": storable_text(traceback),
        "reason": reason,
    }
    TaskRun.objects.update_or_create(
        id=run_id,
        defaults=state,
        create_defaults={
            **state,
            "application_id": application_name,
            "task_name": task_name,
            "args": args,
            "kwargs": kwargs,
            "origin": Origin.CODE,
            "created_at": enqueued_at or started_at or finished_at or timezone.now(),
        },
    )
