"""The status of a run as the task API reports it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lime_task.exceptions import NotFoundError


class State(StrEnum):
    PENDING = "PENDING"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


COMPLETED_STATES = frozenset({State.SUCCESS, State.FAILURE, State.REVOKED})


@dataclass(frozen=True, slots=True)
class TaskStatus:
    id: str
    status: str
    result: Any = None

    def is_completed(self) -> bool:
        return self.status in COMPLETED_STATES

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "result": self.result}


def get_status(task_id: str, app_name: str) -> TaskStatus:
    """Read a run's status.

    Only the application that started the task may read it: for any other application, and for an
    id nobody sent, this raises :class:`NotFoundError`.
    """
    from limepkg_task_starter.selectors import run_status_get

    status = run_status_get(task_id=str(task_id), application_name=str(app_name))
    if status is None:
        raise NotFoundError(f"No task {task_id} for application {app_name}")
    return status
