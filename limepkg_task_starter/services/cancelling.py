"""Cancelling a run: one that waits never starts, one that runs is stopped by its worker."""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from lime_task.status import State
from limepkg_task_starter.models import AuditAction, AuditEntry, TaskRun
from limepkg_task_starter.permissions import CANCEL

logger = logging.getLogger(__name__)

MAY_NOT_CANCEL = "You may not cancel runs."
NOT_OPEN = "This run has already ended ({status}); there is nothing to cancel."
CANCELLED_WAITING = "Cancelled by {user} before it started."
CANCELLED_RUNNING = "Cancelled by {user} while it ran; its worker was told to stop it."


class CancelRefusedError(PermissionError):
    """The actor may not cancel runs."""


class RunNotOpenError(ValueError):
    """The run has already ended."""


def run_cancel(*, actor: Any, run: TaskRun) -> TaskRun:
    """Cancel ``run`` (PENDING or STARTED) on behalf of ``actor``; audited.

    The record says so at once. A waiting run is refused by the worker that receives it (its
    start finds the run cancelled); a running one is terminated through Celery's revoke, and its
    worker's confirmation is kept with the run's later reports.
    """
    if not actor.has_perm(CANCEL):
        raise CancelRefusedError(MAY_NOT_CANCEL)
    now = timezone.now()
    with transaction.atomic():
        locked = TaskRun.objects.select_for_update().filter(id=run.id).first()
        if locked is None or locked.status not in (State.PENDING, State.STARTED):
            status = locked.status if locked is not None else run.status
            raise RunNotOpenError(NOT_OPEN.format(status=str(status).title()))
        running = locked.status == State.STARTED
        template = CANCELLED_RUNNING if running else CANCELLED_WAITING
        locked.status = State.REVOKED
        locked.finished_at = now
        locked.cancelled_at = now
        locked.cancelled_by = actor
        locked.reason = template.format(user=actor.get_username())
        locked.save(
            update_fields=["status", "finished_at", "cancelled_at", "cancelled_by", "reason"]
        )
        AuditEntry.objects.create(
            actor=actor,
            actor_username=actor.get_username(),
            action=AuditAction.CANCEL,
            application=locked.application_id,
            task_name=locked.task_name,
            run_as=locked.run_as,
            arguments=locked.arguments,
            run=locked,
            detail=locked.reason,
        )
        transaction.on_commit(lambda: _revoke(locked.id, terminate=running))
    return locked


def _revoke(task_id: str, *, terminate: bool) -> None:
    """Tell the task handlers (a broadcast): a waiting message is dropped, a running one killed.

    Best effort: the record already says the run is cancelled, and a worker that starts it
    anyway finds that out before calling the task.
    """
    try:
        current_app.control.revoke(task_id, terminate=terminate, signal="SIGTERM")
    except Exception:  # the broker is down, or does not broadcast (the embedded one)
        logger.warning("Could not tell the task handlers to revoke %s", task_id, exc_info=True)
