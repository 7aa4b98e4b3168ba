"""Reads. Each returns plain values or querysets; none of them writes."""

from __future__ import annotations

import time
from typing import Any

from lime_task.status import State, TaskStatus
from limepkg_task_starter.models import Application, TaskRun

# Application ids are looked up on every send; they never change for a name, so a short-lived
# per-process cache is safe (a deleted application only fails the insert that follows).
_ID_CACHE_SECONDS = 30.0
_application_ids: dict[str, tuple[int, float]] = {}


def application_id_get(*, name: str) -> int | None:
    cached = _application_ids.get(name)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    found = Application.objects.filter(name=name).values_list("id", flat=True).first()
    if found is not None:
        _application_ids[name] = (found, now + _ID_CACHE_SECONDS)
    return found


def application_config_get(*, name: str) -> dict[str, Any] | None:
    config = Application.objects.filter(name=name).values_list("config", flat=True).first()
    return None if config is None else dict(config)


def run_status_get(*, task_id: str, application_name: str) -> TaskStatus | None:
    row = (
        TaskRun.objects.filter(id=task_id, application__name=application_name)
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
