"""Worker side: keep each run's record in step with what the worker does.

Celery signals call one service each. A database that is briefly unavailable must not fail the
task or kill the worker: the write is kept in memory and replayed, in order, before the next one
and every few seconds until the database answers; what is still unwritten at shutdown is logged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery import signals
from django.conf import settings
from django.db import DatabaseError, IntegrityError, close_old_connections, connections
from django.utils import timezone

from lime_task import events, headers
from lime_task.config import tasks_config
from lime_task.decorator import SKIPPED, STAND_DOWN, LimeTask
from lime_task.exceptions import TaskFailure
from lime_task.status import State
from limepkg_task_starter import stopping
from limepkg_task_starter.services import maintenance, stats, worker

logger = logging.getLogger(__name__)

MAX_RESULT_BYTES = 64 * 1024
RESULT_NOT_JSON = "The task returned a value that is not JSON-serialisable: {error}"
RESULT_TOO_LARGE = "The task returned {size} bytes of JSON; the limit is {limit} bytes."
WORKER_PROCESS_LOST = "The worker process running it was lost: {error}"
HARD_TIME_LIMIT = "Ended by the hard time limit ({error})."
SOFT_TIME_LIMIT = "Ended by the soft time limit."

REPLAY_EVERY_SECONDS = 2.0
STATS_ROLLUP_EVERY_SECONDS = 60.0

_backlog: deque[Callable[[], None]] = deque(maxlen=10_000)
_backlog_lock = threading.Lock()
_replayer: threading.Thread | None = None
# task id -> (wall clock, monotonic) when the run started in this process.
_started: dict[str, tuple[float, float]] = {}


def _write(change: Callable[[], None]) -> None:
    """Run a tracking write, first replaying any that failed while the database was away."""
    with _backlog_lock:
        _backlog.append(change)
        written = _replay()
    if not written:
        _start_replayer()


def _replay() -> bool:
    """Write what is waiting, oldest first; False when the database is still away."""
    try:
        while _backlog:
            try:
                _backlog[0]()
            except IntegrityError:
                logger.exception("Run history write refused by the database; dropped")
            _backlog.popleft()
    except DatabaseError as error:
        logger.warning("Run history write deferred (%d waiting): %s", len(_backlog), error)
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
            if conn.connection is not None and not conn.is_usable():
                conn.close()
        return False
    return True


def _start_replayer() -> None:
    """Without a next run to carry them, deferred writes still reach the database."""
    global _replayer
    with _backlog_lock:
        if _replayer is not None and _replayer.is_alive():
            return
        _replayer = threading.Thread(target=_replay_until_done, name="history-replay", daemon=True)
        _replayer.start()


def _replay_until_done() -> None:
    while True:
        time.sleep(REPLAY_EVERY_SECONDS)
        with _backlog_lock:
            if not _backlog:
                return
            if _replay():
                logger.info("Run history caught up")
                return


def _is_tracked(task: Any) -> bool:
    return isinstance(task, LimeTask) and not getattr(task.request, "is_eager", False)


def _ended_at_shutdown(task_id: str) -> bool:
    """Its record already says how the stopping handler ended it: the pool's word comes after."""
    return task_id in stopping.ended_at_shutdown


@signals.task_prerun.connect
def on_task_prerun(
    sender: Any = None, task_id: str = "", args: Any = (), kwargs: Any = None, **_: Any
) -> None:
    if not _is_tracked(sender):
        return
    request = sender.request
    values = request.headers or {}
    delivery = request.delivery_info or {}
    started = worker.StartedRun(
        task_id=task_id,
        task_name=sender.name,
        application_name=values.get(headers.APPLICATION),
        run_as=values.get(headers.USER) or "",
        language=values.get(headers.LANGUAGE) or "",
        args=list(args or ()),
        kwargs=dict(kwargs or {}),
        worker=request.hostname or "",
        queue=values.get(headers.QUEUE_NAME) or delivery.get("routing_key") or "",
        scheduled=bool(values.get("periodic_task_name")),
    )
    _started[task_id] = (time.time(), time.monotonic())
    at = timezone.now()
    proceed: list[bool] = []
    _write(lambda: proceed.append(worker.run_mark_started(started=started, at=at)))
    if proceed == [False]:
        # Cancelled while it waited in the queue: the task's function is not called.
        setattr(request, STAND_DOWN, True)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def _report(
    task: Any,
    task_id: str,
    status: State,
    result: Any,
    error: BaseException | None,
    reason: str = "",
) -> None:
    """The structured completion log line and the task event, once a run has finished."""
    request = task.request
    values = request.headers or {}
    finished = time.time()
    started_wall, started_monotonic = _started.pop(task_id, (None, None))
    sent = values.get(headers.SENT_AT)
    latency_ms = round((started_wall - float(sent)) * 1000, 1) if started_wall and sent else None
    duration_ms = (
        round((time.monotonic() - started_monotonic) * 1000, 1) if started_monotonic else None
    )
    fields = {
        "task_id": task_id,
        "task_name": task.name,
        "task_queue": values.get(headers.QUEUE_NAME)
        or (request.delivery_info or {}).get("routing_key", ""),
        "task_user_id": values.get(headers.USER) or "",
        "task_latency_ms": latency_ms,
        "task_duration_ms": duration_ms,
        "task_outcome": str(status),
        "application": values.get(headers.APPLICATION) or "",
    }
    logger.info("Task %s [%s] %s", task.name, task_id, status, extra=fields)
    if not settings.LIME_TASK_EVENTS:
        return
    outcome: events.Outcome = "success" if status == State.SUCCESS else "failure"
    key = events.routing_key(task.name, outcome)
    error_body = None
    if error is not None:
        error_body = {
            "type": f"{type(error).__module__}.{type(error).__qualname__}",
            "message": str(error),
        }
    events.publish_event(
        task.app,
        key,
        {
            "event": key,
            "task_id": task_id,
            "task_name": task.name,
            "application": fields["application"],
            "user": fields["task_user_id"],
            "status": str(status),
            "result": result,
            "error": error_body,
            "reason": reason,
            "queue": fields["task_queue"],
            "worker": request.hostname or "",
            "sent_at": _iso(float(sent)) if sent else None,
            "started_at": _iso(started_wall),
            "finished_at": _iso(finished),
            "latency_ms": latency_ms,
            "duration_ms": duration_ms,
        },
    )


def _json_result(result: Any) -> tuple[Any, str]:
    try:
        encoded = json.dumps(result)
    except (TypeError, ValueError) as error:
        return None, RESULT_NOT_JSON.format(error=error)
    if len(encoded) > MAX_RESULT_BYTES:
        return None, RESULT_TOO_LARGE.format(size=len(encoded), limit=MAX_RESULT_BYTES)
    return result, ""


@signals.task_success.connect
def on_task_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if not _is_tracked(sender):
        return
    if getattr(sender.request, STAND_DOWN, False):
        _started.pop(sender.request.id, None)
        return  # the record already says it was cancelled
    if getattr(sender.request, SKIPPED, False):
        _write(partial(worker.run_mark_skipped, task_id=sender.request.id, at=timezone.now()))
        return
    value, problem = _json_result(result)
    finish = partial(
        worker.run_mark_finished,
        task_id=sender.request.id,
        at=timezone.now(),
        worker=sender.request.hostname or "",
    )
    if problem:
        _write(
            partial(
                finish, status=State.FAILURE, error_type="ResultNotSerialisable", reason=problem
            )
        )
        _report(sender, sender.request.id, State.FAILURE, None, None, problem)
    else:
        _write(partial(finish, status=State.SUCCESS, result=value))
        _report(sender, sender.request.id, State.SUCCESS, value, None)


MAX_ERROR_MESSAGE = 2000


def _error_message(exception: BaseException) -> str:
    """What the exception says, for everyone who may see the run (the traceback is apart)."""
    message = exception.message if isinstance(exception, TaskFailure) else str(exception)
    message = str(message) if message is not None else ""
    if len(message) > MAX_ERROR_MESSAGE:
        return message[: MAX_ERROR_MESSAGE - 1] + "…"
    return message


def _failure_reason(exception: BaseException) -> str:
    if isinstance(exception, WorkerLostError):
        return WORKER_PROCESS_LOST.format(error=exception)
    if isinstance(exception, TimeLimitExceeded):
        return HARD_TIME_LIMIT.format(error=exception)
    if isinstance(exception, SoftTimeLimitExceeded):
        return SOFT_TIME_LIMIT
    return ""


@signals.task_failure.connect
def on_task_failure(
    sender: Any = None,
    task_id: str = "",
    exception: BaseException | None = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    if not _is_tracked(sender) or exception is None or _ended_at_shutdown(task_id):
        return
    error_class = type(exception)
    # TaskFailure's message is the run's result; any other error leaves no result.
    result = exception.message if isinstance(exception, TaskFailure) else None
    reason = _failure_reason(exception)
    _write(
        partial(
            worker.run_mark_finished,
            task_id=task_id,
            status=State.FAILURE,
            at=timezone.now(),
            result=result,
            error_type=f"{error_class.__module__}.{error_class.__qualname__}",
            error_message=_error_message(exception),
            traceback=str(getattr(einfo, "traceback", "") or ""),
            reason=reason,
            worker=sender.request.hostname or "",
        )
    )
    _report(sender, task_id, State.FAILURE, result, exception, reason)


@signals.task_revoked.connect
def on_task_revoked(
    request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    if request is None or not request.id or _ended_at_shutdown(request.id):
        return
    reason = (
        "Expired before it ran."
        if expired
        else ("Terminated." if terminated else "Revoked before it ran.")
    )
    _write(
        partial(
            worker.run_mark_finished,
            task_id=request.id,
            status=State.REVOKED,
            at=timezone.now(),
            reason=reason,
            worker=getattr(request, "hostname", "") or "",
        )
    )


@signals.worker_process_shutdown.connect
def on_worker_process_shutdown(**_: Any) -> None:
    if not _backlog:
        return
    _write(lambda: None)
    if len(_backlog) > 1:
        logger.error(
            "Run history lost %d writes: the database stayed unavailable", len(_backlog) - 1
        )


# --- Heartbeat and reconciling, in the worker's main process ------------------------------


class Maintenance(threading.Thread):
    """Marks this worker alive, reconciles dead runs and purges expired ones, periodically; rolls
    closed hours up into the task statistics once a minute."""

    def __init__(self, hostname: str) -> None:
        super().__init__(name="lime-task-maintenance", daemon=True)
        self.hostname = hostname
        self.stopping = threading.Event()

    def run(self) -> None:
        config = tasks_config()
        next_rollup = 0.0
        while not self.stopping.is_set():
            try:
                close_old_connections()
                maintenance.worker_heartbeat(hostname=self.hostname)
                maintenance.run_reconcile(
                    worker_lost_after=config.worker_lost_after,
                    pending_timeout=config.pending_timeout,
                )
                maintenance.runs_purge_expired(
                    older_than=timezone.now() - timedelta(seconds=config.result_expires)
                )
                if time.monotonic() >= next_rollup:
                    stats.stats_rollup()
                    stats.stats_purge(older_than=timezone.now() - timedelta(days=8))
                    next_rollup = time.monotonic() + STATS_ROLLUP_EVERY_SECONDS
            except DatabaseError:
                logger.exception("Task handler maintenance failed; retrying")
                connections.close_all()
            self.stopping.wait(config.heartbeat_interval)
        connections.close_all()


_maintenance: Maintenance | None = None


@signals.worker_ready.connect
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    global _maintenance
    _maintenance = Maintenance(hostname=getattr(sender, "hostname", "") or "worker")
    _maintenance.start()


@signals.worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    if _maintenance is not None:
        _maintenance.stopping.set()
