"""Worker side: keep each run's record in step with what the worker does.

Celery signals call one service each. A database that is briefly unavailable must not fail the
task or kill the worker: the write is kept in memory and replayed, in order, before the next one
and every few seconds until the database answers; what is still unwritten at shutdown is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery import signals
from django.conf import settings
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    close_old_connections,
    connections,
)
from django.utils import timezone

from lime_task import events, headers
from lime_task.config import tasks_config
from lime_task.decorator import SKIPPED, STAND_DOWN, LimeTask
from lime_task.exceptions import ResultNotStorableError, TaskFailure
from lime_task.status import State
from lime_task.storable import MAX_RESULT_BYTES, NotStorableError, storable_json, storable_text
from limepkg_task_starter import queue_consuming, selectors, stopping
from limepkg_task_starter.forking import database_work
from limepkg_task_starter.services import maintenance, stats, worker

logger = logging.getLogger(__name__)

WORKER_PROCESS_LOST = "The worker process running it was lost: {error}"
HARD_TIME_LIMIT = "Ended by the hard time limit ({error})."
SOFT_TIME_LIMIT = "Ended by the soft time limit."

REPLAY_EVERY_SECONDS = 2.0
STATS_ROLLUP_EVERY_SECONDS = 60.0

# A value the database will not keep: writing it again cannot help.
REFUSED = (DataError, IntegrityError, ValueError)
# The database did not answer: everything waits, in order, and is written when it is back.
UNAVAILABLE = (OperationalError, InterfaceError)
# Any other database error is taken as this write's own trouble: its run's later writes wait
# behind it, other runs' writes go on, and it is given up after this many tries.
MAX_ATTEMPTS = 5
NOT_STORED = "The run's outcome could not be stored as reported ({error}); recorded as FAILURE."


@dataclass
class _Write:
    task_id: str
    change: Callable[[], None]
    # Written in its place when the database refuses ``change``; None: it is dropped.
    instead: Callable[[str], None] | None = None
    attempts: int = 0


_backlog: deque[_Write] = deque(maxlen=10_000)
_backlog_lock = threading.Lock()
_replayer: threading.Thread | None = None
# task id -> (wall clock, monotonic) when the run started in this process.
_started: dict[str, tuple[float, float]] = {}


def _write(
    task_id: str, change: Callable[[], None], instead: Callable[[str], None] | None = None
) -> None:
    """Run a tracking write, first replaying any that failed while the database was away."""
    with _backlog_lock:
        _backlog.append(_Write(task_id, change, instead))
        written = _replay()
    if not written:
        _start_replayer()


def _replay() -> bool:
    """Write what is waiting, oldest first; False while something is still waiting."""
    waiting: deque[_Write] = deque()
    held: set[str] = set()  # runs with a write waiting: their later writes wait behind it
    while _backlog:
        entry = _backlog.popleft()
        if entry.task_id in held:
            waiting.append(entry)
            continue
        try:
            entry.change()
        except REFUSED as error:
            _write_instead(entry, error)
        except UNAVAILABLE as error:
            _backlog.appendleft(entry)
            _backlog.extendleft(reversed(waiting))
            logger.warning("Run history write deferred (%d waiting): %s", len(_backlog), error)
            _close_broken_connections()
            return False
        except DatabaseError as error:
            entry.attempts += 1
            if entry.attempts >= MAX_ATTEMPTS:
                logger.error(
                    "Run %s: history write given up after %d tries: %s",
                    entry.task_id,
                    entry.attempts,
                    error,
                )
                continue
            logger.warning("Run %s: history write deferred: %s", entry.task_id, error)
            held.add(entry.task_id)
            waiting.append(entry)
            _close_broken_connections()
    _backlog.extend(waiting)
    return not _backlog


def _write_instead(entry: _Write, error: Exception) -> None:
    """A refused write is a verdict on the value, not an outage: write what can be kept."""
    problem = storable_text(str(error).strip())
    if entry.instead is None:
        logger.error(
            "Run %s: history write refused by the database; dropped: %s", entry.task_id, problem
        )
        return
    logger.error("Run %s: history write refused by the database: %s", entry.task_id, problem)
    try:
        entry.instead(problem)
    except REFUSED:
        logger.exception("Run %s: the FAILURE written instead was refused too", entry.task_id)


def _close_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()
        if conn.connection is not None and not conn.is_usable():
            conn.close()


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
        with _backlog_lock, database_work():
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
    if queue_consuming.put_back_if_paused(sender, queue_consuming.queue_of(sender)):
        return  # taken before its queue was paused: back in the queue, still Pending
    _started[task_id] = (time.time(), time.monotonic())
    at = timezone.now()
    proceed: list[bool] = []
    _write(task_id, lambda: proceed.append(worker.run_mark_started(started=started, at=at)))
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
    """A TaskFailure's message as the history keeps it (it is the result), or why it cannot."""
    try:
        storable_json(result, where="The failure message", max_bytes=MAX_RESULT_BYTES)
    except NotStorableError as error:
        return None, str(error)
    return result, ""


@signals.task_success.connect
def on_task_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if not _is_tracked(sender):
        return
    if getattr(sender.request, STAND_DOWN, False):
        _started.pop(sender.request.id, None)
        return  # the record already says it was cancelled
    if getattr(sender.request, SKIPPED, False):
        task_id = sender.request.id
        _write(task_id, partial(worker.run_mark_skipped, task_id=task_id, at=timezone.now()))
        return
    # LimeTask has checked that the history can keep the result (lime_task.storable).
    task_id = sender.request.id
    _finish(task_id, State.SUCCESS, worker=sender.request.hostname or "", result=result)
    _report(sender, task_id, State.SUCCESS, result, None)


def _finish(task_id: str, status: State, **report: Any) -> None:
    """Write how the run ended; if the database refuses what was reported, a FAILURE that
    says so, with the same times and worker."""
    at = timezone.now()
    _write(
        task_id,
        partial(worker.run_mark_finished, task_id=task_id, status=status, at=at, **report),
        instead=lambda problem: worker.run_mark_finished(
            task_id=task_id,
            status=State.FAILURE,
            at=at,
            worker=report.get("worker", ""),
            error_type=report.get("error_type", ""),
            error_message=report.get("error_message", ""),
            reason=NOT_STORED.format(error=problem),
        ),
    )


MAX_ERROR_MESSAGE = 2000


def _error_message(exception: BaseException) -> str:
    """What the exception says, for everyone who may see the run (the traceback is apart)."""
    message = exception.message if isinstance(exception, TaskFailure) else str(exception)
    message = storable_text(str(message) if message is not None else "")
    if len(message) > MAX_ERROR_MESSAGE:
        return message[: MAX_ERROR_MESSAGE - 1] + "…"
    return message


def _failure_reason(exception: BaseException) -> str:
    if isinstance(exception, ResultNotStorableError):
        return str(exception)
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
    reason = _failure_reason(exception)
    # TaskFailure's message is the run's result; any other error leaves no result.
    result = None
    if isinstance(exception, TaskFailure):
        result, problem = _json_result(exception.message)
        reason = reason or problem
    _finish(
        task_id,
        State.FAILURE,
        result=result,
        error_type=f"{error_class.__module__}.{error_class.__qualname__}"[:255],
        error_message=_error_message(exception),
        traceback=storable_text(str(getattr(einfo, "traceback", "") or "")),
        reason=reason,
        worker=sender.request.hostname or "",
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
    _finish(request.id, State.REVOKED, reason=reason, worker=getattr(request, "hostname", "") or "")


@signals.worker_process_shutdown.connect
def on_worker_process_shutdown(**_: Any) -> None:
    if not _backlog:
        return
    _write("", lambda: None)
    if len(_backlog) > 1:
        logger.error(
            "Run history lost %d writes: the database stayed unavailable", len(_backlog) - 1
        )


# --- Heartbeat and reconciling, in the worker's main process ------------------------------


class Maintenance(threading.Thread):
    """Marks this worker alive, reconciles dead runs and purges expired ones, periodically; rolls
    closed hours up into the task statistics once a minute; and, every second or so, stops or
    resumes consuming the queues paused or resumed on the handlers page."""

    def __init__(self, hostname: str, consumer: Any = None) -> None:
        super().__init__(name="lime-task-maintenance", daemon=True)
        self.hostname = hostname
        self.consumer = consumer
        self.gate = queue_consuming.gate_for(consumer) if consumer is not None else None
        self.stopping = threading.Event()

    def run(self) -> None:
        config = tasks_config()
        next_rollup = next_heartbeat = 0.0
        while not self.stopping.is_set():
            try:
                with database_work():
                    close_old_connections()
                if self.gate is not None:
                    with database_work():
                        paused = selectors.paused_queue_names()
                    self.gate.sync(paused)  # outside: it only queues work for the consumer
                if time.monotonic() >= next_heartbeat:
                    self._heartbeat(config)
                    next_heartbeat = time.monotonic() + config.heartbeat_interval
                if time.monotonic() >= next_rollup:
                    with database_work():
                        stats.stats_rollup()
                        stats.stats_purge(older_than=timezone.now() - timedelta(days=8))
                    next_rollup = time.monotonic() + STATS_ROLLUP_EVERY_SECONDS
            except DatabaseError:
                logger.exception("Task handler maintenance failed; retrying")
                connections.close_all()
            self.stopping.wait(min(config.heartbeat_interval, queue_consuming.CHECK_EVERY_SECONDS))
        connections.close_all()

    def _heartbeat(self, config: Any) -> None:
        concurrency, queues = handler_pool_and_queues(self.consumer)
        with database_work():
            maintenance.worker_heartbeat(
                hostname=self.hostname, concurrency=concurrency, queues=queues
            )
            maintenance.run_reconcile(
                worker_lost_after=config.worker_lost_after, pending_timeout=config.pending_timeout
            )
            maintenance.runs_purge_expired(
                older_than=timezone.now() - timedelta(seconds=config.result_expires)
            )


def handler_pool_and_queues(consumer: Any) -> tuple[int | None, list[str] | None]:
    """The pool size the handler was started with (its maximum when autoscaling) and the
    queues it consumes now: read at every heartbeat, as a control command may add or cancel a
    queue while it runs."""
    controller = getattr(consumer, "controller", None)
    concurrency = getattr(controller, "max_concurrency", None) or getattr(
        controller, "concurrency", None
    )
    try:
        queues = sorted(consumer.app.amqp.queues.consume_from)
    except AttributeError:  # the signal came without a consumer: nothing to say
        queues = None
    return (concurrency if isinstance(concurrency, int) else None, queues)


_maintenance: Maintenance | None = None


@signals.worker_ready.connect
def on_worker_ready(sender: Any = None, **_: Any) -> None:
    global _maintenance
    _maintenance = Maintenance(
        hostname=getattr(sender, "hostname", "") or "worker", consumer=sender
    )
    _maintenance.start()


@signals.worker_shutdown.connect
def on_worker_shutdown(**_: Any) -> None:
    if _maintenance is not None:
        _maintenance.stopping.set()
