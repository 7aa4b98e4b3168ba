"""The status of a run as the task API reports it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lime_task.backend import get_backend
from lime_task.exceptions import NotFoundError

NO_SUCH_TASK = "No task {task_id} for application {app_name}"


class State(StrEnum):
    PENDING = "PENDING"
    STARTED = "STARTED"
    RETRY = "RETRY"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    REVOKED = "REVOKED"


COMPLETED_STATES = frozenset({State.SUCCESS, State.FAILURE, State.REVOKED})


class Origin(StrEnum):
    """Where a run was started from."""

    PAGE = "page"
    RERUN = "rerun"
    SCHEDULE = "schedule"
    CODE = "code"
    API = "api"

    @property
    def label(self) -> str:
        return ORIGIN_LABELS[self]


ORIGIN_LABELS = {
    Origin.PAGE: "Task starter",
    Origin.RERUN: "Run again",
    Origin.SCHEDULE: "Schedule",
    Origin.CODE: "Code",
    Origin.API: "API",
}


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
    status = get_backend().get_status(str(task_id), str(app_name))
    if status is None:
        raise NotFoundError(NO_SUCH_TASK.format(task_id=task_id, app_name=app_name))
    return status


def wait_for_status(task_id: str, app_name: str, *, timeout: float = 10.0) -> TaskStatus:
    """Read a run's status once it has completed, or as it is when ``timeout`` seconds are up.

    The backend is told when a run completes, so this returns as soon as the worker has recorded
    it, without a polling loop. The same isolation as :func:`get_status` applies.
    """
    status = get_backend().wait_for_status(str(task_id), str(app_name), timeout=timeout)
    if status is None:
        raise NotFoundError(NO_SUCH_TASK.format(task_id=task_id, app_name=app_name))
    return status
