"""Worker side: stopping tasks while they run, in the task handler's main process.

Two occasions. A run cancelled in the database is stopped by the handler running it, on every
broker: Celery's ``revoke`` is a broadcast, which the embedded broker cannot carry. And a handler
asked to stop (SIGTERM, Ctrl-C) waits ``shutdown_grace`` seconds for its running tasks, then
stops them and records why; whatever still holds it up after that, it exits anyway.

Both stop a task as ``revoke(terminate=True)`` does: the pool process running it gets SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from billiard.process import active_children
from celery import signals
from celery.worker import state as worker_state
from django.db import DatabaseError, close_old_connections, connections
from django.utils import timezone

from lime_task.config import tasks_config
from lime_task.status import State
from limepkg_task_starter import selectors
from limepkg_task_starter.forking import database_work
from limepkg_task_starter.services import worker

logger = logging.getLogger(__name__)

CANCEL_CHECK_EVERY_SECONDS = 0.5
SHUTDOWN_CHECK_EVERY_SECONDS = 0.2
# After the grace period: time for the stopped tasks to be reported and the pool to close.
SHUTDOWN_DEADLINE_AFTER_GRACE_SECONDS = 5.0

STOPPED_AT_SHUTDOWN = (
    "Its task handler {worker} was asked to stop ({signal}) while it ran, and stopped it after "
    "waiting {waited:g} s for it to finish."
)
LOST_AT_SHUTDOWN = (
    "Its task handler {worker} was asked to stop ({signal}) while it ran; the same signal ended "
    "the process running it."
)

# The consumer of this process's worker, once it is ready: it holds the pool.
_consumer: Any = None
# Runs this process ended at shutdown: their record says why, the pool's later word is not kept.
ended_at_shutdown: set[str] = set()


def _running() -> dict[str, Any]:
    """Requests this handler is executing, by task id."""
    try:
        return {request.id: request for request in list(worker_state.active_requests)}
    except RuntimeError:  # the main thread changed the set while it was copied: next time
        return {}


def _terminate(request: Any) -> None:
    # From this module's threads, not the consumer's: for the pool this is a kill(2) of the
    # process running the job and a flag on the job, which its result handler thread reads.
    worker_state.revoked.add(request.id)  # a redelivered message is dropped, as after revoke
    request.terminate(_consumer.pool, signal=signal.SIGTERM)


def _process_gone(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


class CancelWatcher(threading.Thread):
    """Stops the runs this handler executes once they are cancelled in the database."""

    def __init__(self) -> None:
        super().__init__(name="lime-task-cancel-watcher", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(CANCEL_CHECK_EVERY_SECONDS):
            running = _running()
            if not running:
                continue  # no query while idle
            try:
                with database_work():
                    close_old_connections()
                    cancelled = selectors.runs_cancelled(run_ids=list(running))
            except DatabaseError as error:
                logger.warning("Could not read which runs were cancelled: %s", error)
                connections.close_all()
                continue
            for task_id in cancelled:
                if task_id not in worker_state.revoked:  # Celery's revoke broadcast was first
                    logger.info("Stopping run %s: it was cancelled", task_id)
                    _terminate(running[task_id])
        connections.close_all()


class ShutdownDeadline(threading.Thread):
    """Bounds a warm shutdown: stops what still runs after the grace period, exits at the end."""

    def __init__(self, *, hostname: str, sig: str) -> None:
        super().__init__(name="lime-task-shutdown-deadline", daemon=True)
        self.hostname = hostname
        self.sig = sig

    def run(self) -> None:
        grace = tasks_config().shutdown_grace
        began = time.monotonic()
        while time.monotonic() - began < grace:
            running = _running()
            for request in running.values():
                if _process_gone(request.worker_pid):
                    self._end(request, LOST_AT_SHUTDOWN, waited=0)
            if not running:
                break
            time.sleep(SHUTDOWN_CHECK_EVERY_SECONDS)
        waited = time.monotonic() - began
        for request in _running().values():
            self._end(request, STOPPED_AT_SHUTDOWN, waited=round(waited, 1))
        deadline = grace + SHUTDOWN_DEADLINE_AFTER_GRACE_SECONDS
        # Normally the process has exited long before; this also bounds a plain ``celery worker``
        # caught in billiard's pool finaliser at interpreter exit.
        time.sleep(max(0.0, deadline - waited))
        logger.error("Task handler %s still stopping after %g s; exiting", self.hostname, deadline)
        for process in active_children():  # the pool and the embedded scheduler
            if process.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
        _exit_now(1)

    def _end(self, request: Any, template: str, *, waited: float) -> None:
        if request.id in ended_at_shutdown:
            return
        ended_at_shutdown.add(request.id)
        reason = template.format(worker=self.hostname, signal=self.sig, waited=waited)
        logger.warning("Run %s: %s", request.id, reason)
        try:
            with database_work():
                close_old_connections()
                worker.run_mark_finished(
                    task_id=request.id,
                    status=State.FAILURE,
                    at=timezone.now(),
                    reason=reason,
                    worker=self.hostname,
                )
        except DatabaseError:
            logger.exception("Run %s: could not record that it was stopped", request.id)
        _terminate(request)


def _exit_now(code: int) -> None:
    """Leave without the interpreter's exit handlers: billiard's pool finaliser waits forever
    for a queue lock when a pool process died holding it (a SIGTERM to the process group)."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def exit_without_finalizers(code: object) -> None:
    """End a task handler process whose worker has stopped, with the worker's exit code."""
    _exit_now(code if isinstance(code, int) else 0 if code is None else 1)


_watcher: CancelWatcher | None = None
_deadline: ShutdownDeadline | None = None


@signals.worker_ready.connect
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    global _consumer, _watcher
    _consumer = sender
    _watcher = CancelWatcher()
    _watcher.start()


@signals.worker_shutting_down.connect
def on_worker_shutting_down(sender: Any = None, sig: str = "", **_: Any) -> None:
    global _deadline
    if _deadline is not None:
        return  # a second signal: the first one's deadline holds
    _deadline = ShutdownDeadline(hostname=str(sender or "worker"), sig=sig)
    _deadline.start()


@signals.worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    if _watcher is not None:
        _watcher.stopping.set()
