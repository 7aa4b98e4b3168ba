"""Run logs: what a task handler captured of a run's log lines, written as one row per run."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from lime_task.storable import storable_text
from limepkg_task_starter.models import RunLog, TaskRun


def run_log_save(*, run_id: str, text: str, lines: int, dropped: int) -> bool:
    """Write a run's captured log (the whole of what is kept so far); False when the run is not
    recorded (another task backend's run, or one already expired), so there is nowhere to keep
    it."""
    values = {"text": storable_text(text), "lines": lines, "dropped": dropped}
    if RunLog.objects.filter(run_id=run_id).update(**values, updated_at=timezone.now()):
        return True
    if not TaskRun.objects.filter(id=run_id).exists():
        return False
    try:
        with transaction.atomic():
            RunLog.objects.create(run_id=run_id, **values)
    except IntegrityError:  # written meanwhile by the run's last write, or the run deleted
        return RunLog.objects.filter(run_id=run_id).update(**values) > 0
    return True
