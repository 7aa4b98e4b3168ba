"""Changes administrators make to schedules (enabled, paused): recorded for the scheduler and
in the audit."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from limepkg_task_starter.models import AuditAction, AuditEntry, SchedulePause
from limepkg_task_starter.permissions import PAUSE_SCHEDULE

CHANGED = "Changed {fields} of {schedule}"


def schedule_change_audit(*, actor: Any, periodic_task: PeriodicTask, changed: list[str]) -> None:
    """One audit entry for an administrator's change to a schedule declared in code."""
    declaration = getattr(periodic_task, "declaration", None)
    if declaration is None or not changed:
        return
    AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.get_username(),
        action=AuditAction.SCHEDULE_CHANGE,
        application=declaration.application_id,
        task_name=declaration.task_name,
        run_as="",
        detail=CHANGED.format(fields=", ".join(sorted(changed)), schedule=periodic_task.name),
    )


@transaction.atomic
def schedules_set_enabled(
    *, actor: Any, periodic_tasks: QuerySet[PeriodicTask], enabled: bool | None
) -> int:
    """Enable or disable schedules (``None`` toggles each); the number changed.

    ``date_changed`` moves with them, so the scheduler, which reads only rows changed since its
    last look, sees the change (a bare ``update()`` would leave it unseen).
    """
    now = timezone.now()
    rows = list(periodic_tasks.select_related("declaration"))
    for row in rows:
        row.enabled = (not row.enabled) if enabled is None else enabled
        row.date_changed = now
        if not row.enabled:
            row.last_run_at = None  # as django-celery-beat's own action does
    PeriodicTask.objects.bulk_update(rows, ["enabled", "date_changed", "last_run_at"])
    PeriodicTasks.update_changed()
    for row in rows:
        schedule_change_audit(actor=actor, periodic_task=row, changed=["enabled"])
    return len(rows)


# --- Pause and resume -------------------------------------------------------------------------

PAUSED = "Paused {schedule}{until}"
PAUSED_UNTIL = " until {until:%Y-%m-%d %H:%M} UTC"
RESUMED = "Resumed {schedule}; the ticks missed while paused are not run"
UNTIL_NOT_LATER = "“Until” must be later than now; leave it empty to pause until resumed."
UNTIL_TOO_LATE = "“Until” is past the last time that can be kept (the end of the year 9999 UTC)."
MAY_NOT_PAUSE = "You may not pause or resume schedules."


class PauseRefusedError(ValueError):
    """A pause that cannot be: the message says why (the time it should end has passed)."""


class MayNotPauseError(PermissionError):
    """The person may not pause or resume schedules."""


def _changed(*, periodic_task: PeriodicTask, now: datetime.datetime, **fields: Any) -> None:
    """Tell the scheduler: it reads only rows whose ``date_changed`` moved (update() sends no
    signal, and the scheduler's own bookkeeping must not look like an edit)."""
    PeriodicTask.objects.filter(pk=periodic_task.pk).update(date_changed=now, **fields)
    PeriodicTasks.update_changed()


def _audit(*, actor: Any, application: str, periodic_task: PeriodicTask, detail: str) -> None:
    AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.get_username(),
        action=AuditAction.SCHEDULE_CHANGE,
        application=application,
        task_name=periodic_task.task,
        run_as="",
        detail=detail,
    )


@transaction.atomic
def schedule_pause(
    *,
    actor: Any,
    application: str,
    periodic_task: PeriodicTask,
    until: datetime.datetime | None = None,
) -> SchedulePause:
    """Hold a schedule back, until resumed or until ``until``; pausing a paused one again sets
    a new end. The scheduler skips its ticks from its next look for changes (a second)."""
    if not actor.has_perm(PAUSE_SCHEDULE):
        raise MayNotPauseError(MAY_NOT_PAUSE)
    now = timezone.now()
    if until is not None:
        try:
            until = until.astimezone(datetime.UTC)
        except OverflowError:
            raise PauseRefusedError(UNTIL_TOO_LATE) from None
        if until <= now:
            raise PauseRefusedError(UNTIL_NOT_LATER)
    pause, _ = SchedulePause.objects.update_or_create(
        periodic_task=periodic_task,
        defaults={
            "paused_at": now,
            "paused_by": actor,
            "paused_by_username": actor.get_username(),
            "until": until,
        },
    )
    _changed(periodic_task=periodic_task, now=now)
    ending = PAUSED_UNTIL.format(until=until) if until else ""
    _audit(
        actor=actor,
        application=application,
        periodic_task=periodic_task,
        detail=PAUSED.format(schedule=periodic_task.name, until=ending),
    )
    return pause


@transaction.atomic
def schedule_resume(*, actor: Any, application: str, periodic_task: PeriodicTask) -> bool:
    """End a pause; False when there was none in force. The ticks it held back are not run:
    the schedule counts from now (as django-celery-beat does for a schedule enabled again)."""
    if not actor.has_perm(PAUSE_SCHEDULE):
        raise MayNotPauseError(MAY_NOT_PAUSE)
    now = timezone.now()
    pause = SchedulePause.objects.filter(periodic_task=periodic_task).first()
    if pause is None or not pause.in_force(now):
        return False
    pause.delete()
    _changed(periodic_task=periodic_task, now=now, last_run_at=None)
    _audit(
        actor=actor,
        application=application,
        periodic_task=periodic_task,
        detail=RESUMED.format(schedule=periodic_task.name),
    )
    return True
