"""Progress reporting from inside a running task."""

from __future__ import annotations

import time

from celery import current_task

from lime_task.backend import get_backend

# Writes closer together than this are skipped (the last one, done == total, always goes out).
MIN_INTERVAL_SECONDS = 0.25
# A prefork worker process runs one task at a time, so the last write is all there is to
# remember (in a threads pool this only throttles less, never wrongly).
_last_write: tuple[str, float] = ("", 0.0)


def report_progress(done: int, total: int, message: str = "") -> None:
    """Record how far the current run has come; the Task starter shows it as a progress bar."""
    request = current_task.request if current_task else None
    task_id = getattr(request, "id", None)
    if task_id is None or getattr(request, "is_eager", False):
        return
    global _last_write
    now = time.monotonic()
    last_task, last_time = _last_write
    if done < total and last_task == task_id and now - last_time < MIN_INTERVAL_SECONDS:
        return
    _last_write = (task_id, now)
    get_backend().report_progress(task_id, done=done, total=total, message=message)
