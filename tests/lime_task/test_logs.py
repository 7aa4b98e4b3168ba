"""Log helpers: a lost pool process is one line, without billiard's traceback."""

from __future__ import annotations

import logging
import sys

from billiard.einfo import ExceptionInfo
from billiard.exceptions import WorkerLostError

from lime_task.logs import WorkerLostInOneLine


def record_of(error: BaseException) -> logging.LogRecord:
    """The record Celery's request logs when a task fails: ``exc_info`` is billiard's
    ``ExceptionInfo.exc_info``, whose value wraps the error with billiard's traceback text."""
    try:
        raise error
    except BaseException:
        exc_info = ExceptionInfo(sys.exc_info()).exc_info
    return logging.LogRecord(
        "celery.worker.request",
        logging.ERROR,
        __file__,
        1,
        "Task handler raised error: %r",
        (error,),
        exc_info,
    )


def test_a_lost_pool_process_is_logged_without_its_traceback() -> None:
    record = record_of(WorkerLostError("Worker exited prematurely: signal 15 (SIGTERM) Job: 0."))
    assert WorkerLostInOneLine().filter(record)
    line = logging.Formatter("%(message)s").format(record)
    assert line == (
        "Task handler raised error: "
        "WorkerLostError('Worker exited prematurely: signal 15 (SIGTERM) Job: 0.')"
    )


def test_any_other_error_keeps_its_traceback() -> None:
    record = record_of(KeyError("customer"))
    assert WorkerLostInOneLine().filter(record)
    assert "Traceback (most recent call last)" in logging.Formatter().format(record)


def test_the_handler_logs_through_it() -> None:
    # What the task handlers' logging config installs on Celery's request logger.
    filters = logging.getLogger("celery.worker.request").filters
    assert any(isinstance(found, WorkerLostInOneLine) for found in filters)
