"""Changes administrators make to schedules: recorded for the scheduler and in the audit."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from limepkg_task_starter.models import AuditAction, AuditEntry

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
