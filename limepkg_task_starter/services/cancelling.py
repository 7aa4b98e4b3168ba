"""Cancelling a run: one that waits never starts, one that runs is stopped by its worker."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone

from lime_task.config import tasks_config
from lime_task.status import State
from limepkg_task_starter import selectors
from limepkg_task_starter.models import AuditAction, AuditEntry, TaskRun
from limepkg_task_starter.permissions import CANCEL

logger = logging.getLogger(__name__)

MAY_NOT_CANCEL = "You may not cancel runs."
NOT_OPEN = "This run has already ended ({status}); there is nothing to cancel."
CANCELLED_WAITING = "Cancelled by {user} before it started."
CANCELLED_RUNNING = "Cancelled by {user} while it ran; its worker was told to stop it."
CANCELLED_UNREACHABLE = (
    "Cancelled by {user} while it ran on {worker}, which {silence}: it may not be stopped. Its "
    "later reports say how it ended."
)
# What the confirmation page says before anything is done.
WILL_NOT_START = "It is waiting: it will not start."
WILL_STOP = "It is running: its task handler will stop it within a few seconds."
MAY_NOT_STOP = (
    "It is running on {worker}, which {silence}: it may not be able to stop it. The run will "
    "say Cancelled; if it finishes after all, its outcome replaces that."
)
NOTHING_TO_CANCEL = "It has already ended; there is nothing to cancel."
# A task handler marks itself alive every heartbeat_interval; this many missed marks and it
# may not be running anything any more (or not watching for cancels).
SILENT_AFTER_HEARTBEATS = 3
SILENT_FOR = "has not been heard from for {seconds:.0f} s"
NEVER_SEEN = "has never reported itself alive"


class CancelRefusedError(PermissionError):
    """The actor may not cancel runs."""


class RunNotOpenError(ValueError):
    """The run has already ended."""


def run_cancel(*, actor: Any, run: TaskRun, note: str = "") -> TaskRun:
    """Cancel ``run`` (PENDING or STARTED) on behalf of ``actor``; audited.

    The record says so at once. A waiting run is refused by the worker that receives it (its
    start finds the run cancelled); a running one is terminated through Celery's revoke, and its
    worker's confirmation is kept with the run's later reports. ``note`` is added to the audit
    entry (a bulk action names itself there).
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
        silent = _handler_silence(locked, now=now) if running else None
        template = (
            CANCELLED_UNREACHABLE if silent else CANCELLED_RUNNING if running else CANCELLED_WAITING
        )
        locked.status = State.REVOKED
        locked.finished_at = now
        locked.cancelled_at = now
        locked.cancelled_by = actor
        locked.reason = template.format(
            user=actor.get_username(), worker=locked.worker, silence=silent
        )
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
            detail=f"{locked.reason} {note}".strip(),
        )
        transaction.on_commit(lambda: _revoke(locked.id, terminate=running))
    return locked


def run_cancel_outlook(*, run: TaskRun) -> str:
    """What cancelling ``run`` will do, said before it is done."""
    if run.status == State.PENDING:
        return WILL_NOT_START
    if run.status != State.STARTED:
        return NOTHING_TO_CANCEL
    silent = _handler_silence(run, now=timezone.now())
    return MAY_NOT_STOP.format(worker=run.worker, silence=silent) if silent else WILL_STOP


def _handler_silence(run: TaskRun, *, now: datetime) -> str | None:
    """How the task handler running ``run`` has been silent, when too long to count on it."""
    if not run.worker:
        return None
    last_seen = selectors.worker_last_seen(hostname=run.worker)
    if last_seen is None:
        return NEVER_SEEN
    silent = (now - last_seen).total_seconds()
    if silent <= SILENT_AFTER_HEARTBEATS * tasks_config().heartbeat_interval:
        return None
    return SILENT_FOR.format(seconds=silent)


def _revoke(task_id: str, *, terminate: bool) -> None:
    """Tell the task handlers (a broadcast): a waiting message is dropped, a running one killed.

    Best effort: the record already says the run is cancelled, and a worker that starts it
    anyway finds that out before calling the task.
    """
    try:
        current_app.control.revoke(task_id, terminate=terminate, signal="SIGTERM")
    except Exception:  # the broker is down, or does not broadcast (the embedded one)
        logger.warning("Could not tell the task handlers to revoke %s", task_id, exc_info=True)
