"""Why a start (or a cancel) can be refused, and the HTTP status that says so on every interface.

The pages and the API each answer a refusal in one place, through this table: a refusal type
maps to one status, its message to what the person reads.
"""

from __future__ import annotations

from typing import Final

from lime_task.exceptions import InvalidArgumentsError, NotFoundError, UnknownTaskError
from limepkg_task_starter.arguments import ArgumentsError
from limepkg_task_starter.services.bulk import BulkActionBusyError, NothingToDoError
from limepkg_task_starter.services.cancelling import CancelRefusedError, RunNotOpenError
from limepkg_task_starter.services.queues import (
    QueuePauseRefusedError,
    QueueStateError,
    UnknownQueueError,
)
from limepkg_task_starter.services.retrying import NotRetryableError
from limepkg_task_starter.services.schedules import MayNotPauseError, PauseRefusedError
from limepkg_task_starter.services.starting import ScheduleDisabledError, StartRefusedError

REFUSAL_STATUS: Final[dict[type[Exception], int]] = {
    ArgumentsError: 400,  # the arguments do not fit the task
    InvalidArgumentsError: 400,  # not JSON-serialisable, or too large
    StartRefusedError: 403,  # permission, or the user to run as
    CancelRefusedError: 403,  # may not cancel
    RunNotOpenError: 409,  # cancelling a run that has already ended
    NotFoundError: 404,  # not a task of this application
    UnknownTaskError: 404,  # exposed, but not a registered @task
    QueuePauseRefusedError: 403,  # may not pause or resume queues
    UnknownQueueError: 404,  # not a configured queue
    QueueStateError: 409,  # pausing a paused queue, resuming a running one
    NotRetryableError: 409,  # retrying a run that did not fail, or was retried already
    BulkActionBusyError: 409,  # another bulk action of the application is running
    NothingToDoError: 400,  # a bulk action whose filter matches no run it could act on
    ScheduleDisabledError: 409,  # Run now on a schedule the application's config disables
    MayNotPauseError: 403,  # may not pause or resume schedules
    PauseRefusedError: 400,  # a pause that would end before it starts
}
REFUSALS: Final = tuple(REFUSAL_STATUS)


def refusal_status(error: Exception) -> int:
    return next(status for kind, status in REFUSAL_STATUS.items() if isinstance(error, kind))


def refusal_messages(error: Exception) -> list[str]:
    return error.messages if isinstance(error, ArgumentsError) else [str(error)]
