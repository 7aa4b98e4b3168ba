"""Progress reporting from inside a running task."""

from __future__ import annotations

import time

from celery import current_task

# Writes closer together than this are skipped (the last one, done == total, always goes out).
MIN_INTERVAL_SECONDS = 0.25
_last_write: dict[str, float] = {}


def report_progress(done: int, total: int, message: str = "") -> None:
    """Record how far the current run has come; the Task starter shows it as a progress bar."""
    request = current_task.request if current_task else None
    task_id = getattr(request, "id", None)
    if task_id is None or getattr(request, "is_eager", False):
        return
    now = time.monotonic()
    if done < total and now - _last_write.get(task_id, 0.0) < MIN_INTERVAL_SECONDS:
        return
    _last_write[task_id] = now
    if done >= total:
        _last_write.pop(task_id, None)

    from limepkg_task_starter.services import run_set_progress

    run_set_progress(task_id=task_id, done=done, total=total, message=message)
