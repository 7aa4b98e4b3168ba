"""Bulk actions: "Retry all N failed runs matching" and "Cancel all N waiting runs matching".

The runs are chosen when the person confirms (at most :data:`MAX_BULK_ITEMS`, newest first) and
written down as the action's items, with one audit entry for the whole. Each item then goes
through the same service as a single retry or cancel (so the start and cancel policies apply
to each, and each leaves its own audit entry naming the bulk action), in a thread of the web
process that records every item as it goes.

Why a thread and not a task: it works the same on every broker, the embedded one included,
does not wait behind the application's own runs in a queue (or in a paused one), and needs no
task handler to be running. Why it survives a web process that stops: the progress is in the
database, item by item, and the processor renews a lease as it goes; whoever looks at the
progress of an action whose lease went quiet for :data:`STALE_AFTER` takes it over, and goes on
with the items not done yet (a retry or cancel done twice is refused the second time anyway).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connections, transaction
from django.utils import timezone

from lime_task.exceptions import InvalidArgumentsError, NotFoundError, UnknownTaskError
from limepkg_task_starter.arguments import ArgumentsError
from limepkg_task_starter.models import (
    Application,
    AuditAction,
    AuditEntry,
    BulkAction,
    BulkActionItem,
    BulkActionKind,
    BulkActionState,
    BulkItemOutcome,
    TaskRun,
)
from limepkg_task_starter.permissions import CANCEL, START
from limepkg_task_starter.selectors import MAX_BULK_ITEMS
from limepkg_task_starter.services import cancelling, retrying, starting

logger = logging.getLogger(__name__)

# The most runs one bulk action acts on (MAX_BULK_ITEMS) are the newest that match. A second
# action takes the next ones: those retried or cancelled are no longer among its runs.
STALE_AFTER = timedelta(seconds=30)

BUSY = "A bulk action is still running for {application}: wait until it has finished."
NOTHING_MATCHES = "No run matches: there is nothing to {verb}."
ACTOR_GONE = "The person who started the bulk action no longer exists."
PART_OF = "Part of bulk action {id}: {summary}."
SUMMARY = {
    BulkActionKind.RETRY: "retry all {count} failed runs matching {filter}",
    BulkActionKind.CANCEL: "cancel all {count} waiting runs matching {filter}",
}
AUDIT_ACTIONS = {
    BulkActionKind.RETRY: AuditAction.BULK_RETRY,
    BulkActionKind.CANCEL: AuditAction.BULK_CANCEL,
}
STOPPED = "Stopped after an unexpected error: {error}"

# Why one item is not done: said with the item, and the action goes on with the next.
ITEM_REFUSALS: tuple[type[Exception], ...] = (
    retrying.NotRetryableError,
    starting.StartRefusedError,
    cancelling.CancelRefusedError,
    cancelling.RunNotOpenError,
    NotFoundError,
    UnknownTaskError,
    ArgumentsError,
    InvalidArgumentsError,
)


class BulkActionBusyError(RuntimeError):
    """Another bulk action of the application has not finished."""


class NothingToDoError(ValueError):
    """The filter matches no run the action could act on."""


def bulk_action_start(
    *,
    actor: Any,
    application: Application,
    kind: BulkActionKind,
    run_ids: list[str],
    matched: int,
    filter_query: str,
    filter_text: str,
) -> BulkAction:
    """Write the action down with its items and one audit entry, and start working on it once
    that is committed. ``run_ids`` are the runs chosen, newest first, at most the cap."""
    if kind == BulkActionKind.RETRY and not actor.has_perm(START):
        raise starting.StartRefusedError(starting.MAY_NOT_START)
    if kind == BulkActionKind.CANCEL and not actor.has_perm(CANCEL):
        raise cancelling.CancelRefusedError(cancelling.MAY_NOT_CANCEL)
    run_ids = run_ids[:MAX_BULK_ITEMS]
    if not run_ids:
        verb = "retry" if kind == BulkActionKind.RETRY else "cancel"
        raise NothingToDoError(NOTHING_MATCHES.format(verb=verb))
    with transaction.atomic():
        # One running action per application: a double click, or two people, do not race.
        list(Application.objects.select_for_update().filter(pk=application.pk))
        if BulkAction.objects.filter(
            application=application, state=BulkActionState.RUNNING
        ).exists():
            raise BulkActionBusyError(BUSY.format(application=application.name))
        action = BulkAction.objects.create(
            application=application,
            kind=kind,
            actor=actor,
            actor_username=actor.get_username(),
            filter_query=filter_query,
            filter_text=filter_text,
            matched=matched,
            lease=uuid.uuid4().hex,
            heartbeat_at=timezone.now(),
        )
        names = dict(TaskRun.objects.filter(id__in=run_ids).values_list("id", "task_name"))
        BulkActionItem.objects.bulk_create(
            BulkActionItem(
                bulk_action=action, position=position, run_id=run_id, task_name=names[run_id]
            )
            for position, run_id in enumerate(run_ids)
            if run_id in names
        )
        AuditEntry.objects.create(
            actor=actor,
            actor_username=actor.get_username(),
            action=AUDIT_ACTIONS[kind],
            application=application.name,
            task_name="",
            arguments={"filter": filter_query, "runs": run_ids},
            detail=PART_OF.format(id=action.id, summary=_summary(action, len(run_ids))),
        )
        lease = action.lease
        transaction.on_commit(lambda: _in_background(action.id, lease))
    return action


def _summary(action: BulkAction, count: int) -> str:
    return SUMMARY[BulkActionKind(action.kind)].format(
        count=count, filter=action.filter_text or "no filter"
    )


def _in_background(action_id: int, lease: str) -> None:
    threading.Thread(
        target=bulk_action_process,
        kwargs={"action_id": action_id, "lease": lease, "own_connection": True},
        name=f"bulk-action-{action_id}",
        daemon=True,
    ).start()


def bulk_action_resume_if_stalled(*, action: BulkAction) -> bool:
    """Take over an action whose processor stopped renewing its lease (its process ended),
    and go on with it in the background. True when it was taken over here."""
    if action.state != BulkActionState.RUNNING:
        return False
    lease = uuid.uuid4().hex
    taken = BulkAction.objects.filter(
        id=action.id,
        state=BulkActionState.RUNNING,
        heartbeat_at__lt=timezone.now() - STALE_AFTER,
    ).update(lease=lease, heartbeat_at=timezone.now())
    if taken:
        logger.warning("Bulk action %s went quiet; taking it over", action.id)
        _in_background(action.id, lease)
    return bool(taken)


def bulk_action_process(*, action_id: int, lease: str, own_connection: bool = False) -> None:
    """Do the action's waiting items in order, each through its service, recording each one.

    Stops when another processor has taken the lease over. An unexpected error stops the
    action and says so on it (in a thread nothing else would see it)."""
    try:
        action = BulkAction.objects.select_related("application").get(id=action_id)
        actor = (
            get_user_model()._default_manager.filter(pk=action.actor_id).first()
            if action.actor_id is not None
            else None
        )
        act = _item_action(action, actor)
        for item in action.items.filter(outcome=BulkItemOutcome.WAITING).order_by("position"):
            if not _renew(action, lease):
                return
            with transaction.atomic():
                _do_item(item, act)
        BulkAction.objects.filter(id=action.id, lease=lease).update(
            state=BulkActionState.DONE, finished_at=timezone.now()
        )
    except Exception as error:  # a thread's error is seen by nobody: log it, and show it
        logger.exception("Bulk action %s stopped", action_id)
        BulkAction.objects.filter(id=action_id, lease=lease).update(
            state=BulkActionState.STOPPED,
            finished_at=timezone.now(),
            error=STOPPED.format(error=f"{type(error).__name__}: {error}"),
        )
    finally:
        if own_connection:
            connections.close_all()


def _renew(action: BulkAction, lease: str) -> bool:
    return bool(
        BulkAction.objects.filter(id=action.id, lease=lease).update(heartbeat_at=timezone.now())
    )


def _item_action(action: BulkAction, actor: Any) -> Callable[[TaskRun], str]:
    """What is done to each run; returns the new run's id (a retry), or ""."""
    note = PART_OF.format(id=action.id, summary=_summary(action, action.items.count()))

    def act(run: TaskRun) -> str:
        if actor is None:
            raise starting.StartRefusedError(ACTOR_GONE)
        if action.kind == BulkActionKind.RETRY:
            return retrying.run_retry(actor=actor, run=run, detail=note).id
        cancelling.run_cancel(actor=actor, run=run, note=note)
        return ""

    return act


def _do_item(item: BulkActionItem, act: Callable[[TaskRun], str]) -> None:
    run = TaskRun.objects.select_related("application").filter(id=item.run_id).first()
    try:
        if run is None:
            raise NotFoundError("The run no longer exists.")
        item.new_run_id = act(run)
        item.outcome = BulkItemOutcome.DONE
    except ITEM_REFUSALS as error:
        messages = error.messages if isinstance(error, ArgumentsError) else [str(error)]
        item.outcome = BulkItemOutcome.REFUSED
        item.message = " ".join(messages)
    item.save(update_fields=["outcome", "new_run_id", "message"])
