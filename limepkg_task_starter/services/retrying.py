"""Retrying a failed run: the rule every retry follows (the runs page's ticked rows, "Retry all
… matching", the API), on top of the start policy of ``starting.run_rerun``."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from lime_task.status import State
from limepkg_task_starter.models import TaskRun
from limepkg_task_starter.services import starting

NOT_FAILED = "only failed runs are retried, and it is {status}."
RETRIED_ALREADY = "it was retried already, as {run}."


class NotRetryableError(ValueError):
    """The run did not fail, or it was retried already: retrying it would run it twice."""


def run_retry(*, actor: Any, run: TaskRun, detail: str = "") -> TaskRun:
    """Start a failed run again through the start policy, once.

    The run's row is locked while it is checked and its retry recorded, so two retries of the
    same run at the same moment (a double click, two people, a bulk action beside a ticked
    retry) start it once; on SQLite, which has no row locks, writes are serialised anyway.
    """
    with transaction.atomic():
        locked = (
            TaskRun.objects.select_related("application")
            .select_for_update(of=("self",))
            .filter(id=run.id)
            .first()
        ) or run
        if locked.status != State.FAILURE:
            raise NotRetryableError(NOT_FAILED.format(status=locked.get_status_display()))
        retried = locked.reruns.order_by("-created_at").values_list("id", flat=True).first()
        if retried is not None:
            raise NotRetryableError(RETRIED_ALREADY.format(run=retried))
        return starting.run_rerun(actor=actor, run=locked, detail=detail)
