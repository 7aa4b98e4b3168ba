"""Django's task framework (``django.tasks``) on the Task starter.

**Our backend.** With::

    TASKS = {"default": {
        "BACKEND": "limepkg_task_starter.task_framework.TaskStarterBackend",
        "OPTIONS": {"APPLICATION": "demo", "USER": "ada"},
    }}

``my_task.enqueue(...)`` sends through the same path as ``lime_task.send_task``: a run recorded in
the history, then the message on the broker, routed to our queues (``queue_name`` names one of
them or a QoS category; ``priority`` above 0 goes to ``asap``, below 0 to ``background``). The task
handlers run it (the task's module must be one of a solution package's task modules) and
``get_result()`` answers from the run history.

**Any other backend.** Runs of a backend whose ``OPTIONS`` name ``TASK_STARTER_APPLICATION`` are
recorded in that application's history from the framework's signals (enqueued, started,
finished), so they appear on the runs page with status, result and errors.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import current_app
from django.db import DatabaseError
from django.dispatch import receiver
from django.utils import timezone

import lime_task
from lime_task import headers
from lime_task.config import tasks_config
from lime_task.framework import (
    DEFAULT_TASK_QUEUE_NAME,
    BaseTaskBackend,
    FrameworkTask,
    InvalidTask,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    qos_for_priority,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from lime_task.routing import all_queue_names
from lime_task.status import State
from limepkg_task_starter.services import framework_runs
from limepkg_task_starter.services.framework_runs import FRAMEWORK_STATES

logger = logging.getLogger(__name__)

RECORD_OPTION = "TASK_STARTER_APPLICATION"
NOT_LOADED = (
    "{task} is not one of the task modules the task handlers load: list its module in a "
    "solution package's get_task_modules() (LIME_PACKAGES)."
)
NO_APPLICATION = "TASKS[{alias!r}]['OPTIONS']['APPLICATION'] must name the application to run as."
STATUSES = {
    State.PENDING: TaskResultStatus.READY,
    State.STARTED: TaskResultStatus.RUNNING,
    State.SUCCESS: TaskResultStatus.SUCCESSFUL,
    State.FAILURE: TaskResultStatus.FAILED,
    State.REVOKED: TaskResultStatus.FAILED,
}


class TaskStarterBackend(BaseTaskBackend):  # type: ignore[misc]
    """Runs ``django.tasks`` tasks on the task handlers, recorded in the run history."""

    supports_defer = False  # a held Celery message (eta) is lost with its handler: not offered
    supports_async_task = True  # the framework's Task.call runs a coroutine function to the end
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.application = str(self.options.get("APPLICATION", ""))
        self.user_name = str(self.options.get("USER", ""))
        if "QUEUES" not in params:
            config = tasks_config()
            self.queues = {DEFAULT_TASK_QUEUE_NAME, *config.routing.qos, *all_queue_names(config)}

    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        if not self.application:
            raise InvalidTask(NO_APPLICATION.format(alias=self.alias))

    def enqueue(self, task: Any, args: Any, kwargs: Any) -> Any:
        self.validate_task(task)
        if not isinstance(lime_task_registered(task.module_path), FrameworkTask):
            raise InvalidTask(NOT_LOADED.format(task=task.module_path))
        app = lime_task.LimeApplication(self.application, user_name=self.user_name)
        sent = lime_task.send_task(
            task.module_path, app, *args, **dict(kwargs), **_route_headers(task)
        )
        result = _result(task, self.alias, sent.id, list(args), dict(kwargs))
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        run = framework_runs.framework_run_get(
            run_id=str(result_id), application_name=self.application
        )
        registered = lime_task_registered(run.task_name) if run is not None else None
        if run is None or not isinstance(registered, FrameworkTask):
            raise TaskResultDoesNotExist(result_id)
        status = STATUSES[State(run.status)]
        result = _result(
            registered.framework_task,
            self.alias,
            run.id,
            list(run.args),
            dict(run.kwargs),
            status=status,
            enqueued_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            worker_ids=[run.worker] if run.worker else [],
        )
        if status == TaskResultStatus.FAILED:
            result.errors.append(
                TaskError(
                    exception_class_path=run.error_type or "lime_task.exceptions.TaskFailure",
                    traceback=run.traceback or run.reason or run.error_message,
                )
            )
        if status == TaskResultStatus.SUCCESSFUL:
            object.__setattr__(result, "_return_value", run.result)
        return result


def lime_task_registered(name: str) -> Any:
    return current_app.tasks.get(name)


def _route_headers(task: Any) -> dict[str, str]:
    """Where the message goes: a queue or QoS category named by ``queue_name``, else by
    ``priority``."""
    if task.queue_name in tasks_config().routing.qos:
        return {headers.QOS_CATEGORY: task.queue_name}
    if task.queue_name != DEFAULT_TASK_QUEUE_NAME:
        return {headers.QUEUE: task.queue_name}
    category = qos_for_priority(task.priority)
    return {headers.QOS_CATEGORY: category} if category else {}


def _result(
    task: Any,
    alias: str,
    result_id: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    status: Any = TaskResultStatus.READY,
    enqueued_at: Any = None,
    started_at: Any = None,
    finished_at: Any = None,
    worker_ids: list[str] | None = None,
) -> Any:
    return TaskResult(
        task=task,
        id=result_id,
        status=status,
        enqueued_at=enqueued_at or timezone.now(),
        started_at=started_at,
        finished_at=finished_at,
        last_attempted_at=started_at,
        args=args,
        kwargs=kwargs,
        backend=alias,
        errors=[],
        worker_ids=worker_ids or [],
    )


# --- Runs of other backends, recorded from the framework's signals ----------------------------


def _recording_application(task_result: Any) -> str | None:
    if task_result.backend not in task_backends.settings:
        return None  # an alias this process does not know
    backend = task_backends[task_result.backend]
    if isinstance(backend, TaskStarterBackend):
        return None  # our own runs are recorded by the task handlers
    name = backend.options.get(RECORD_OPTION)
    return str(name) if name else None


@receiver(task_enqueued)
@receiver(task_started)
@receiver(task_finished)
def _record_other_backends_run(sender: Any, task_result: Any, **_: Any) -> None:
    application = _recording_application(task_result)
    if application is None:
        return
    return_value = None
    if task_result.status == TaskResultStatus.SUCCESSFUL:
        return_value = task_result._return_value  # the property raises unless it succeeded
    try:
        _record(application, task_result, return_value)
    except DatabaseError:  # the other backend's run goes on: only its record here is missing
        logger.exception("Run %s of another task backend not recorded", task_result.id)


def _record(application: str, task_result: Any, return_value: Any) -> None:
    framework_runs.framework_run_record(
        application_name=application,
        run_id=str(task_result.id),
        task_name=task_result.task.module_path,
        status=FRAMEWORK_STATES[str(task_result.status)],
        args=list(task_result.args),
        kwargs=dict(task_result.kwargs),
        enqueued_at=task_result.enqueued_at,
        started_at=task_result.started_at,
        finished_at=task_result.finished_at,
        worker=(task_result.worker_ids or [""])[-1],
        result=return_value,
        errors=[(error.exception_class_path, error.traceback) for error in task_result.errors],
    )
