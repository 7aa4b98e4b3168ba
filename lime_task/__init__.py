"""The task API solution code uses: declare, send and follow background tasks.

from lime_task import task, send_task, get_status, TaskFailure

@task
def my_task(app, number: int = 5):
    return f"counted to {number} in {app.name}"

status = send_task("my_solution.tasks.my_tasks.my_task", app, 7)
"""

from __future__ import annotations

from lime_task.application import LimeApplication, get_application
from lime_task.decorator import LimeTask, task
from lime_task.dispatch import send_task
from lime_task.exceptions import (
    InvalidArgumentsError,
    NotFoundError,
    TaskFailure,
    TaskNotSentError,
    UnknownTaskError,
)
from lime_task.progress import report_progress
from lime_task.status import Origin, State, TaskStatus, get_status, wait_for_status

__all__ = [
    "InvalidArgumentsError",
    "LimeApplication",
    "LimeTask",
    "NotFoundError",
    "Origin",
    "State",
    "TaskFailure",
    "TaskNotSentError",
    "TaskStatus",
    "UnknownTaskError",
    "get_application",
    "get_status",
    "report_progress",
    "send_task",
    "task",
    "wait_for_status",
]
