"""Worker side: keep each run's record in step with what the worker does.

Celery signals call one service each. A database that is briefly unavailable must not fail the
task or kill the worker: the write is kept in memory and replayed before the next one, and what
is still unwritten at shutdown is logged by task id.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery import signals
from django.db import DatabaseError, IntegrityError, close_old_connections, connections
from django.utils import timezone

from lime_task import headers
from lime_task.conf import tasks_config
from lime_task.decorator import LimeTask
from lime_task.exceptions import TaskFailure
from lime_task.status import State
from limepkg_task_starter import services

logger = logging.getLogger(__name__)

MAX_RESULT_BYTES = 64 * 1024
RESULT_NOT_JSON = "The task returned a value that is not JSON-serialisable: {error}"
RESULT_TOO_LARGE = "The task returned {size} bytes of JSON; the limit is {limit} bytes."
WORKER_PROCESS_LOST = "The worker process running it was lost: {error}"
HARD_TIME_LIMIT = "Ended by the hard time limit ({error})."
SOFT_TIME_LIMIT = "Ended by the soft time limit."

_backlog: deque[Callable[[], None]] = deque(maxlen=10_000)


def _write(change: Callable[[], None]) -> None:
    """Run a tracking write, first replaying any that failed while the database was away."""
    _backlog.append(change)
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


def _is_tracked(task: Any) -> bool:
    return isinstance(task, LimeTask) and not getattr(task.request, "is_eager", False)


@signals.task_prerun.connect
def on_task_prerun(
    sender: Any = None, task_id: str = "", args: Any = (), kwargs: Any = None, **_: Any
) -> None:
    if not _is_tracked(sender):
        return
    request = sender.request
    values = request.headers or {}
    delivery = request.delivery_info or {}
    started = services.StartedRun(
        task_id=task_id,
        task_name=sender.name,
        application_name=values.get(headers.APPLICATION),
        run_as=values.get(headers.USER) or "",
        language=values.get(headers.LANGUAGE) or "",
        args=list(args or ()),
        kwargs=dict(kwargs or {}),
        worker=request.hostname or "",
        queue=delivery.get("routing_key") or "",
        scheduled=bool(values.get("periodic_task_name")),
    )
    _write(partial(services.run_mark_started, started=started, at=timezone.now()))


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
    value, problem = _json_result(result)
    finish = partial(services.run_mark_finished, task_id=sender.request.id, at=timezone.now())
    if problem:
        _write(
            partial(
                finish, status=State.FAILURE, error_type="ResultNotSerialisable", reason=problem
            )
        )
    else:
        _write(partial(finish, status=State.SUCCESS, result=value))


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
    if not _is_tracked(sender) or exception is None:
        return
    error_class = type(exception)
    _write(
        partial(
            services.run_mark_finished,
            task_id=task_id,
            status=State.FAILURE,
            at=timezone.now(),
            # TaskFailure's message is the run's result; any other error leaves no result.
            result=exception.message if isinstance(exception, TaskFailure) else None,
            error_type=f"{error_class.__module__}.{error_class.__qualname__}",
            traceback=str(getattr(einfo, "traceback", "") or ""),
            reason=_failure_reason(exception),
        )
    )


@signals.task_revoked.connect
def on_task_revoked(
    request: Any = None, terminated: bool = False, expired: bool = False, **_: Any
) -> None:
    if request is None or not request.id:
        return
    reason = (
        "Expired before it ran."
        if expired
        else ("Terminated." if terminated else "Revoked before it ran.")
    )
    _write(
        partial(
            services.run_mark_finished,
            task_id=request.id,
            status=State.REVOKED,
            at=timezone.now(),
            reason=reason,
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
    """Marks this worker alive, reconciles dead runs and purges expired ones, periodically."""

    def __init__(self, hostname: str) -> None:
        super().__init__(name="lime-task-maintenance", daemon=True)
        self.hostname = hostname
        self.stopping = threading.Event()

    def run(self) -> None:
        config = tasks_config()
        while not self.stopping.is_set():
            try:
                close_old_connections()
                services.worker_heartbeat(hostname=self.hostname)
                services.run_reconcile(
                    worker_lost_after=config.worker_lost_after,
                    pending_timeout=config.pending_timeout,
                )
                services.runs_purge_expired(
                    older_than=timezone.now() - timedelta(seconds=config.result_expires)
                )
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
