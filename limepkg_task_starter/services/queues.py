"""Pausing and resuming a queue: stored for the task handlers, and audited.

A pause is a row (``QueuePause``, one per queue, ``resumed_at`` empty while paused); each task
handler reads the rows at start and every second or so and stops consuming a paused queue
(``limepkg_task_starter.queue_consuming``).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
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


@transaction.atomic
def queue_pause(*, actor: Any, queue: str) -> QueuePause:
    """Pause ``queue`` for every task handler, now and after restarts, until it is resumed."""
    _check(actor, queue)
    QueuePause.objects.get_or_create(
        queue=queue, defaults={"paused_at": timezone.now(), "resumed_at": timezone.now()}
    )
    pause = QueuePause.objects.select_for_update().get(queue=queue)
    if pause.resumed_at is None:
        raise QueueStateError(
            ALREADY_PAUSED.format(
                queue=queue,
                since=pause.paused_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
                user=pause.paused_by_username,
            )
        )
    pause.paused_at = timezone.now()
    pause.paused_by = actor
    pause.paused_by_username = actor.get_username()
    pause.resumed_at = None
    pause.save()
    _audit(actor=actor, action=AuditAction.QUEUE_PAUSE, detail=PAUSED.format(queue=queue))
    return pause


@transaction.atomic
def queue_resume(*, actor: Any, queue: str) -> None:
    """Resume ``queue``: the handlers that consume it take its waiting runs again."""
    _check(actor, queue)
    resumed = QueuePause.objects.filter(queue=queue, resumed_at__isnull=True).update(
        resumed_at=timezone.now()
    )
    if not resumed:
        raise QueueStateError(NOT_PAUSED.format(queue=queue))
    _audit(actor=actor, action=AuditAction.QUEUE_RESUME, detail=RESUMED.format(queue=queue))
