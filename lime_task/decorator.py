"""The ``@task`` decorator and the Celery task class behind it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar, overload

from celery import Task, shared_task

from lime_task.application import LimeApplication, application_from_headers
from lime_task.exceptions import ResultNotStorableError, TaskFailure
from lime_task.storable import MAX_RESULT_BYTES, NotStorableError, storable_json

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger(__name__)
# Set by celery beat on what it sends: the name of the periodic task.
SCHEDULE_HEADER = "periodic_task_name"
# Set on the request of a scheduled run that did nothing (the task is disabled).
SKIPPED = "lime_skipped"
# Set on the request, before the task runs, by whoever keeps the record (the backend's worker
# side) when the run was cancelled before it started: the task's function is not called.
STAND_DOWN = "lime_stand_down"


class LimeTask(Task[Any, Any]):
    """A Celery task whose function receives the sender's application first.

    The worker builds the :class:`LimeApplication` from the message headers that
    :func:`lime_task.send_task` set; a direct call (``my_task(app, 1)``) passes through unchanged.
    """

    qos: str | None = None
    # Celery would check arguments against the signature without the application parameter;
    # lime_task.dispatch checks them itself, application included.
    typing = False
    # TaskFailure is an expected outcome: logged without a traceback, still recorded in full.
    throws = (TaskFailure, ResultNotStorableError)
    # Early acknowledgement is the default for Lime tasks (``@task(acks_late=True)`` opts out).
    acks_late = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.id is None or (args and isinstance(args[0], LimeApplication)):
            return super().__call__(*args, **kwargs)
        # Called by the worker's tracer, which has already pushed this request; calling
        # ``super().__call__`` would push a second, header-less one.
        if getattr(request, STAND_DOWN, False):
            logger.info(
                "Task %s [%s] was stood down before it started (cancelled, or put back to its "
                "paused queue); not run",
                self.name,
                request.id,
            )
            return None
        values = request.headers or {}
        app = application_from_headers(values)
        if values.get(SCHEDULE_HEADER) and not app.typed_config.scheduled_task_enabled(self.name):
            # Disabled in the application's configuration: it stays scheduled, but this
            # stand-in runs instead of it.
            logger.info(
                "Scheduled task %s is disabled for application %s; skipped", self.name, app.name
            )
            setattr(request, SKIPPED, True)
            return None
        result = self.run(app, *args, **kwargs)
        # Checked here, before Celery logs, stores or publishes it: a value the history cannot
        # keep (or Python cannot even print) ends the run as FAILURE saying why.
        try:
            storable_json(result, where="The task's result", max_bytes=MAX_RESULT_BYTES)
        except NotStorableError as error:
            raise ResultNotStorableError(str(error)) from None
        return result


def task_name_of(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


@overload
def task(func: F, /) -> F: ...
@overload
def task(func: None = None, /, *, qos: str | None = None, **options: Any) -> Callable[[F], F]: ...


def task(
    func: Callable[..., Any] | None = None, /, *, qos: str | None = None, **options: Any
) -> Any:
    """Declare a task. Its name is its full import path; other Celery options pass through.

    ``@task`` or ``@task(acks_late=True)`` or ``@task(qos="background")``.
    """

    def register(fn: Callable[..., Any]) -> Any:
        options.setdefault("name", task_name_of(fn))
        # Celery's typing knows shared_task's options one by one, not passed through as here.
        return shared_task(base=LimeTask, qos=qos, **options)(fn)  # type: ignore[no-untyped-call]

    return register(func) if func is not None else register
