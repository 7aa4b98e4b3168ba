"""The database task backend: runs are rows of ``TaskRun``, the history the Task starter shows.

Named by ``LIME_TASK_BACKEND = "limepkg_task_starter.backend.DatabaseBackend"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lime_task.dispatch import Dispatch
from lime_task.status import Origin, TaskStatus
from limepkg_task_starter import selectors
from limepkg_task_starter.services.sending import run_send
from limepkg_task_starter.services.worker import run_set_progress


class DatabaseBackend:
    def send(self, dispatch: Dispatch, *, origin: Origin) -> TaskStatus:
        run = run_send(dispatch=dispatch, origin=origin)
        return TaskStatus(run.id, run.status)

    def get_status(self, task_id: str, app_name: str) -> TaskStatus | None:
        return selectors.run_status_get(task_id=task_id, application_name=app_name)

    def wait_for_status(self, task_id: str, app_name: str, *, timeout: float) -> TaskStatus | None:
        return selectors.run_status_wait(
            task_id=task_id, application_name=app_name, timeout=timeout
        )

    def application_config(self, name: str) -> Mapping[str, Any] | None:
        return selectors.application_config_get(name=name)

    def report_progress(self, task_id: str, *, done: int, total: int, message: str) -> None:
        run_set_progress(task_id=task_id, done=done, total=total, message=message)
