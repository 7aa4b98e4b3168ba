"""Keeping the record honest: heartbeats, runs that can no longer finish, expired runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone

from lime_task.status import State
from limepkg_task_starter.models import QueuePause, TaskRun, WorkerHeartbeat

logger = logging.getLogger(__name__)

WORKER_LOST = "Its worker stopped responding for more than {seconds:g} s; the run was ended."
NEVER_STARTED = "No task handler started it within {seconds:g} s (is one consuming queue "


@dataclass(frozen=True)
class Reconciled:
    worker_lost: int
    never_started: int


def worker_heartbeat(
    *,
    hostname: str,
    at: datetime | None = None,
    concurrency: int | None = None,
    queues: list[str] | None = None,
) -> None:
    """Mark the handler alive, with its pool size and the queues it consumes (each kept as it
    was when not given)."""
    said: dict[str, Any] = {"concurrency": concurrency, "queues": queues}
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={
            "last_seen": at or timezone.now(),
            **{name: value for name, value in said.items() if value is not None},
        },
    )


def run_reconcile(
    *, worker_lost_after: float, pending_timeout: float, now: datetime | None = None
) -> Reconciled:
    """End runs that can no longer finish on their own.

    STARTED on a worker whose heartbeat stopped (or that never had one) becomes FAILURE; PENDING
    that no worker started within ``pending_timeout`` becomes FAILURE. Both are marked
    ``reconciled_at``: if the worker reports the run's end after all, its report becomes the
    outcome and the run's later reports keep this verdict (``worker.run_mark_finished``).
    """
    now = now or timezone.now()
    lost_before = now - timedelta(seconds=worker_lost_after)
    live = WorkerHeartbeat.objects.filter(last_seen__gte=lost_before).values("hostname")
    worker_lost = (
        TaskRun.objects.filter(status=State.STARTED, started_at__lt=lost_before)
        .exclude(worker__in=live)
        .update(
            status=State.FAILURE,
            finished_at=now,
            reconciled_at=now,
            reason=WORKER_LOST.format(seconds=worker_lost_after),
        )
    )
    never_started = (
        TaskRun.objects.filter(
            status=State.PENDING, created_at__lt=now - timedelta(seconds=pending_timeout)
        )
        .exclude(queue__in=_held_queues(since=now - timedelta(seconds=pending_timeout)))
        .update(
            status=State.FAILURE,
            finished_at=now,
            reconciled_at=now,
            reason=Concat(
                Value(NEVER_STARTED.format(seconds=pending_timeout)), F("queue"), Value("?)")
            ),
        )
    )
    if worker_lost or never_started:
        logger.warning(
            "Reconciled runs: %d on lost workers, %d never started", worker_lost, never_started
        )
    return Reconciled(worker_lost=worker_lost, never_started=never_started)


def _held_queues(*, since: datetime) -> QuerySet[QueuePause, str]:
    """Queues whose runs waited because they were paused: paused now, or resumed after
    ``since``. Their waiting runs are not called never started (yet)."""
    return QueuePause.objects.filter(
        Q(resumed_at__isnull=True) | Q(resumed_at__gte=since)
    ).values_list("queue", flat=True)


def runs_purge_expired(
    *, older_than: datetime, batch_size: int = 1000, max_batches: int = 10
) -> int:
    """Delete runs older than ``result_expires`` in bounded batches (never one huge delete)."""
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            TaskRun.objects.filter(created_at__lt=older_than)
            .filter(~Q(status__in=[State.PENDING, State.STARTED]))
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        # Their logs go with them; only the runs are counted.
        deleted += TaskRun.objects.filter(id__in=ids).delete()[1].get(TaskRun._meta.label, 0)
        if len(ids) < batch_size:
            break
    return deleted
