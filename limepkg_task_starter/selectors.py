"""Reads. Each returns plain values or querysets; none of them writes."""

from __future__ import annotations

import time
from typing import Any

from lime_task.status import State, TaskStatus
from limepkg_task_starter.models import Application, TaskRun


# Sending checks the application exists; names that did are remembered for a while, since the
# foreign key still refuses a run for an application deleted in the meantime.
_KNOWN_FOR_SECONDS = 60.0
_known_applications: dict[str, float] = {}


def application_exists(*, name: str) -> bool:
    now = time.monotonic()
    if _known_applications.get(name, 0.0) > now:
        return True
    if not Application.objects.filter(name=name).exists():
        return False
    _known_applications[name] = now + _KNOWN_FOR_SECONDS
    return True


def application_config_get(*, name: str) -> dict[str, Any] | None:
    config = Application.objects.filter(name=name).values_list("config", flat=True).first()
    return None if config is None else dict(config)


def run_status_get(*, task_id: str, application_name: str) -> TaskStatus | None:
    row = (
        TaskRun.objects.filter(id=task_id, application_id=application_name)
        .values_list("status", "result", "error_type")
        .first()
    )
    if row is None:
        return None
    status, result, _error_type = row
    return TaskStatus(task_id, status, result if status != State.PENDING else None)


def history_runs(*, application: Application, task_name: str) -> Any:
    return (
        TaskRun.objects.filter(application=application, task_name=task_name, in_history=True)
        .select_related("started_by")
        .order_by("-created_at")[: application.task_history]
    )
