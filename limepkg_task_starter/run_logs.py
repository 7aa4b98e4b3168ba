"""Each run's own log lines, captured in the task handler and kept with the run.

While a task runs, the log records emitted on its thread (by the task's own loggers, by
``lime_task``'s, by the libraries it calls) at ``run_log_level`` or above are kept for that run,
and only that run: the run is known from a context variable set when the task starts, so two
runs in one process (the threads pool) or in two (prefork) never see each other's lines. The
task handler's own machinery (Celery, kombu, this app's tracking) is left out: it is in the
handler's log as before, and every record still reaches the handler's log too.

What is kept is bounded: the first half of ``run_log_max_bytes`` and the last half, with the
number of lines dropped between. The task's thread only appends to memory; a thread of the
process writes each changed run's log to the database about once a second, so View info shows
it while the run goes on, and the end of the run writes it once more. Writing never fails the
run: a database that refuses or is away leaves the log for the next attempt.

``TASK_STARTER_RUN_LOG_FILTER`` (a setting naming a callable, ``"module.function"``) sees each
line before it is kept and returns it, changed (to redact a secret), or ``None`` to leave it
out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from celery import signals
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.utils.module_loading import import_string

from lime_task.config import tasks_config
from limepkg_task_starter.services import run_logs

logger = logging.getLogger(__name__)

FLUSH_EVERY_SECONDS = 1.0
# The handler's own machinery logs on the task's thread too; those lines are not the task's.
NOT_THE_TASKS = ("celery", "kombu", "amqp", "billiard", "limepkg_task_starter", "django.db")
DROPPED = "… {count} lines dropped …"

current_run: ContextVar[str | None] = ContextVar("lime_task_current_run", default=None)


class RunLogBuffer:
    """One run's kept lines: a head that fills first, then a tail that keeps the newest."""

    def __init__(self, max_bytes: int) -> None:
        self.half = max_bytes // 2
        self.head: list[str] = []
        self.head_bytes = 0
        self.tail: deque[str] = deque()
        self.tail_bytes = 0
        self.lines = 0
        self.dropped = 0
        self.changed = False

    def add(self, line: str) -> None:
        encoded = line.encode("utf-8", "replace")
        if len(encoded) >= self.half:  # one line longer than half the limit: its start
            line = encoded[: self.half - 4].decode("utf-8", "ignore") + "…"
        size = len(line.encode("utf-8", "replace")) + 1
        self.lines += 1
        self.changed = True
        if not self.tail and self.head_bytes + size <= self.half:
            self.head.append(line)
            self.head_bytes += size
            return
        self.tail.append(line)
        self.tail_bytes += size
        while self.tail_bytes > self.half:
            self.tail_bytes -= len(self.tail.popleft().encode("utf-8", "replace")) + 1
            self.dropped += 1

    def text(self) -> str:
        middle = [DROPPED.format(count=self.dropped)] if self.dropped else []
        return "\n".join([*self.head, *middle, *self.tail])


class RunLogCapture(logging.Handler):
    """A handler on the root logger that hands each record of a running task to its buffer."""

    def __init__(self, store: RunLogStore) -> None:
        super().__init__()
        self.store = store
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        run_id = current_run.get()
        if run_id is None or record.name.startswith(NOT_THE_TASKS):
            return
        try:
            self.store.add(run_id, self.format(record))
        except Exception:
            self.handleError(record)


class RunLogStore:
    """The buffers of this process's running runs, and the thread that writes them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        # One write at a time, its snapshot taken inside: a last write at the end of a run is
        # never overtaken by an older snapshot the writer thread took.
        self.write_lock = threading.Lock()
        self.buffers: dict[str, RunLogBuffer] = {}
        self.line_filter: Callable[[str], str | None] | None = None
        self.max_bytes = 65_536
        self.writer_pid: int | None = None

    def begin(self, run_id: str) -> None:
        with self.lock:
            self.buffers[run_id] = RunLogBuffer(self.max_bytes)
        if self.writer_pid != os.getpid():  # a pool process forked from the handler
            self.writer_pid = os.getpid()
            threading.Thread(
                target=self._write_changed_forever, name="lime-task-run-logs", daemon=True
            ).start()

    def add(self, run_id: str, line: str) -> None:
        if self.line_filter is not None:
            kept = self.line_filter(line)
            if kept is None:
                return
            line = kept
        with self.lock:
            buffer = self.buffers.get(run_id)
            if buffer is not None:
                buffer.add(line)

    def end(self, run_id: str) -> None:
        """Write the run's log a last time, on the task's thread (the run has ended)."""
        with self.lock:
            buffer = self.buffers.pop(run_id, None)
        if buffer is not None and buffer.lines:
            self._write(run_id, buffer)

    def _write_changed_forever(self) -> None:
        while True:
            time.sleep(FLUSH_EVERY_SECONDS)
            with self.lock:
                changed = [(run_id, b) for run_id, b in self.buffers.items() if b.changed]
            for run_id, buffer in changed:
                self._write(run_id, buffer)

    def _write(self, run_id: str, buffer: RunLogBuffer) -> None:
        with self.write_lock:
            with self.lock:
                text, lines, dropped = buffer.text(), buffer.lines, buffer.dropped
                buffer.changed = False
            try:
                close_old_connections()
                run_logs.run_log_save(run_id=run_id, text=text, lines=lines, dropped=dropped)
            except DatabaseError as error:
                logger.warning("The log of run %s could not be written (%s)", run_id, error)
                connections["default"].close()
                with self.lock:
                    buffer.changed = True


store = RunLogStore()
_capture = RunLogCapture(store)


def _configure() -> bool:
    """Install the capture on the root logger (once per process); False when it is off."""
    config = tasks_config()
    if config.run_log_level == "NONE":
        return False
    root = logging.getLogger()
    if _capture not in root.handlers:
        _capture.setLevel(config.run_log_level)
        store.max_bytes = config.run_log_max_bytes
        name = getattr(settings, "TASK_STARTER_RUN_LOG_FILTER", None)
        store.line_filter = import_string(name) if name else None
        root.addHandler(_capture)
    return True


@signals.task_prerun.connect
def on_task_prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id and _configure():
        store.begin(task_id)
        current_run.set(task_id)


# The last write comes before the outcome is recorded (these receivers are connected before
# tracking's, see apps.py), so a run shown as ended shows its whole log. postrun ends runs that
# neither succeeded nor failed (a retry, a revoke).
@signals.task_success.connect
def on_task_success(sender: Any = None, **_: Any) -> None:
    task_id = getattr(getattr(sender, "request", None), "id", None)
    _end(task_id)


@signals.task_failure.connect
def on_task_failure(task_id: str | None = None, **_: Any) -> None:
    _end(task_id)


@signals.task_postrun.connect
def on_task_postrun(task_id: str | None = None, **_: Any) -> None:
    _end(task_id)


def _end(task_id: str | None) -> None:
    if task_id and current_run.get() == task_id:
        current_run.set(None)
        store.end(task_id)
