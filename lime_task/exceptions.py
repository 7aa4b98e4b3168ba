"""Errors raised by the task API."""

from __future__ import annotations


class TaskFailure(Exception):  # noqa: N818 - the public name is fixed by the reference API
    """Raise inside a task to end the run as FAILURE with ``message`` as its result."""

    def __init__(self, message: object = "") -> None:
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return self.message


class ResultNotStorableError(ValueError):
    """The task returned a value the run history cannot keep; the message says what."""


class NotFoundError(LookupError):
    """The task id (or application) is unknown to the application that asked."""


class UnknownTaskError(LookupError):
    """``send_task`` was given a name that is not a registered ``@task``."""


class InvalidArgumentsError(ValueError):
    """The arguments cannot be sent: not JSON-serialisable, or too large."""


class TaskNotSentError(RuntimeError):
    """The broker could not take the message. The run is recorded as not sent."""

    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__(f"Task {task_id} was not sent: {reason}")
        self.task_id = task_id
        self.reason = reason
