"""The task API solution code uses: declare, send and follow background tasks.

A task is a function decorated with :func:`task`, whose first argument is the application it
runs for; :func:`send_task` starts it and returns its :class:`TaskStatus` (PENDING);
:func:`get_status` and :func:`wait_for_status` follow it. The tutorial in ``docs/`` shows each
step with code.
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
