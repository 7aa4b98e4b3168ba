"""The Task starter history: the latest N runs of each task, per application."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from lime_task.exceptions import NotFoundError
from lime_task.status import Origin
from limepkg_task_starter import selectors
from limepkg_task_starter.models import TaskRun

UNKNOWN_APPLICATION = "No application named {name!r}: create it in the admin or load its config."
TASK_ID_TAKEN = "Task id {task_id} belongs to another application"


def run_record_in_history(
    *,
    application_name: str,
    task_name: str,
    task_id: str,
    arguments: Mapping[str, Any],
    origin: Origin | None = None,
) -> None:
    """Show a run in the Task starter history with its arguments by name."""
    application = selectors.application_settings(name=application_name)
    if application is None:
        raise NotFoundError(UNKNOWN_APPLICATION.format(name=application_name))
    changes: dict[str, Any] = {"in_history": True, "arguments": dict(arguments)}
    if origin is not None:
        changes["origin"] = origin
    updated = TaskRun.objects.filter(id=task_id, application_id=application_name).update(**changes)
    if not updated:
        if TaskRun.objects.filter(id=task_id).exists():
            raise NotFoundError(TASK_ID_TAKEN.format(task_id=task_id))
        TaskRun.objects.create(
            id=task_id,
            application_id=application_name,
            task_name=task_name,
            arguments=dict(arguments),
            in_history=True,
            origin=origin or Origin.CODE,
            created_at=timezone.now(),
        )
    history_prune(
        application_name=application_name,
        task_name=task_name,
        keep=application.limepkg_task_starter.task_history,
    )


def history_prune(*, application_name: str, task_name: str, keep: int) -> int:
    """Keep the latest ``keep`` runs of a task in the history.

    Reads at most ``keep`` + a few rows through the history index, so its cost does not grow
    with the table. Runs leaving the history stay readable by ``get_status`` until
    ``result_expires``.
    """
    stale = list(
        TaskRun.objects.filter(
            application_id=application_name, task_name=task_name, in_history=True
        )
        .order_by("-created_at")
        .values_list("id", flat=True)[keep : keep + 100]
    )
    if not stale:
        return 0
    return TaskRun.objects.filter(id__in=stale).update(in_history=False)
