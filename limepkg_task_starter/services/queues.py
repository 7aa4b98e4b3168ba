"""Pausing and resuming a queue: stored for the task handlers, and audited.

A pause is a row (``QueuePause``); each task handler reads the rows at start and every second
or so and stops consuming a paused queue (``limepkg_task_starter.queue_consuming``).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from lime_task.config import tasks_config
from lime_task.routing import all_queue_names
from limepkg_task_starter.models import AuditAction, AuditEntry, QueuePause
from limepkg_task_starter.permissions import PAUSE_QUEUE

MAY_NOT_PAUSE = "You may not pause or resume queues."
UNKNOWN_QUEUE = "There is no queue {queue!r}: the configured queues are {queues}."
ALREADY_PAUSED = "Queue {queue} is already paused (since {since} by {user})."
NOT_PAUSED = "Queue {queue} is not paused."
PAUSED = "Paused queue {queue}: task handlers take no new runs from it until it is resumed."
RESUMED = "Resumed queue {queue}: task handlers take its waiting runs again."


class QueuePauseRefusedError(PermissionError):
    """The actor may not pause or resume queues."""


class UnknownQueueError(LookupError):
    """Not one of the configured queues."""


class QueueStateError(ValueError):
    """Pausing a paused queue, or resuming one that runs."""


def _check(actor: Any, queue: str) -> None:
    if not actor.has_perm(PAUSE_QUEUE):
        raise QueuePauseRefusedError(MAY_NOT_PAUSE)
    names = all_queue_names(tasks_config())
    if queue not in names:
        raise UnknownQueueError(UNKNOWN_QUEUE.format(queue=queue, queues=", ".join(names)))


def _audit(*, actor: Any, action: AuditAction, detail: str) -> None:
    # Queues serve every application: the entry names none.
    AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.get_username(),
        action=action,
        application="",
        task_name="",
        detail=detail,
    )


def queue_pause(*, actor: Any, queue: str) -> QueuePause:
    """Pause ``queue`` for every task handler, now and after restarts, until it is resumed."""
    _check(actor, queue)
    try:
        with transaction.atomic():
            pause = QueuePause.objects.create(
                queue=queue,
                paused_at=timezone.now(),
                paused_by=actor,
                paused_by_username=actor.get_username(),
            )
            _audit(actor=actor, action=AuditAction.QUEUE_PAUSE, detail=PAUSED.format(queue=queue))
    except IntegrityError:
        existing = QueuePause.objects.filter(queue=queue).first()
        if existing is None:  # resumed in between: a retry will pause it
            raise
        raise QueueStateError(
            ALREADY_PAUSED.format(
                queue=queue,
                since=existing.paused_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
                user=existing.paused_by_username,
            )
        ) from None
    return pause


@transaction.atomic
def queue_resume(*, actor: Any, queue: str) -> None:
    """Resume ``queue``: the handlers that consume it take its waiting runs again."""
    _check(actor, queue)
    deleted, _ = QueuePause.objects.filter(queue=queue).delete()
    if not deleted:
        raise QueueStateError(NOT_PAUSED.format(queue=queue))
    _audit(actor=actor, action=AuditAction.QUEUE_RESUME, detail=RESUMED.format(queue=queue))
