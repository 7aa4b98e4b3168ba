"""Django's task framework (``django.tasks``, DEP 14) run by the task handlers.

A function decorated with ``django.tasks.task`` in a solution's task modules is registered here as
a Celery task of the same name (its ``module_path``), so it is sent, routed, recorded, cancelled,
reconciled and exposed in the Task starter like an ``@task`` of ``lime_task``. The function does
not receive the application (the framework's tasks know none); with ``takes_context=True`` it
receives a ``TaskContext`` first, as the framework defines.

On Django 5.2 the framework comes from the ``django-tasks`` backport, which has the same API.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from celery import current_app, current_task, shared_task
from django.utils import timezone

try:  # Django 6.0 and later
    import django.tasks as framework
    import django.tasks.backends.base as framework_backends
    import django.tasks.base as framework_base
    import django.tasks.exceptions as framework_exceptions
    import django.tasks.signals as framework_signals
    from django.tasks.exceptions import InvalidTask as _InvalidTask
except ImportError:  # Django 5.2: the django-tasks backport
    import django_tasks as framework  # type: ignore[no-redef]
    import django_tasks.backends.base as framework_backends  # type: ignore[no-redef]
    import django_tasks.base as framework_base  # type: ignore[no-redef]
    import django_tasks.exceptions as framework_exceptions  # type: ignore[no-redef]
    import django_tasks.signals as framework_signals  # type: ignore[no-redef]
    from django_tasks.exceptions import InvalidTaskError as _InvalidTask  # type: ignore[assignment]

from lime_task.decorator import LimeTask

BaseTaskBackend: Any = framework_backends.BaseTaskBackend
DEFAULT_TASK_QUEUE_NAME: str = framework.DEFAULT_TASK_QUEUE_NAME
task_backends = framework.task_backends
InvalidTask: type[Exception] = _InvalidTask
TaskResultDoesNotExist: type[Exception] = framework_exceptions.TaskResultDoesNotExist
Task = framework_base.Task
TaskContext = framework.TaskContext
TaskError = framework_base.TaskError
TaskResult = framework.TaskResult
TaskResultStatus = framework.TaskResultStatus
task_enqueued = framework_signals.task_enqueued
task_started = framework_signals.task_started
task_finished = framework_signals.task_finished

# A framework task's priority (-100…100) chooses its QoS queue; 0 (the default) the default queue.
ASAP, BACKGROUND = "asap", "background"


def qos_for_priority(priority: int) -> str | None:
    if priority > 0:
        return ASAP
    if priority < 0:
        return BACKGROUND
    return None


class FrameworkTask(LimeTask):
    """The Celery task that runs one ``django.tasks`` task."""

    framework_task: Any = None


def _runner(task: Any) -> Callable[..., Any]:
    """The Celery task function for ``task``: the application first (as every LimeTask), then
    the framework function's own parameters, so forms and argument checks read its signature."""
    func = task.func
    parameters = list(inspect.signature(func).parameters.values())
    if task.takes_context:
        parameters = parameters[1:]

    def run(app: Any, *args: Any, **kwargs: Any) -> Any:
        if not task.takes_context:
            return task.call(*args, **kwargs)
        return task.call(
            TaskContext(task_result=_current_result(task, args, kwargs)), *args, **kwargs
        )

    application = inspect.Parameter("app", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    run.__signature__ = inspect.Signature([application, *parameters])  # type: ignore[attr-defined]
    run.__annotations__ = {name: hint for name, hint in _hints(func).items() if name != "context"}
    run.__name__, run.__qualname__, run.__module__ = (
        func.__name__,
        func.__qualname__,
        func.__module__,
    )
    run.__doc__ = func.__doc__
    return run


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    """Resolved in the function's own module: ``run`` lives in this one."""
    try:
        return typing.get_type_hints(func)
    except (NameError, TypeError):
        return dict(getattr(func, "__annotations__", {}))


def _current_result(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What a task that takes the context sees of its own run, as the handler knows it now."""
    request = current_task.request if current_task else None
    now = timezone.now()
    return TaskResult(
        task=task,
        id=str(getattr(request, "id", "") or ""),
        status=TaskResultStatus.RUNNING,
        enqueued_at=None,
        started_at=now,
        finished_at=None,
        last_attempted_at=now,
        args=list(args),
        kwargs=dict(kwargs),
        backend=task.backend,
        errors=[],
        worker_ids=[str(getattr(request, "hostname", "") or "")],
    )


def register_framework_task(task: Any) -> None:
    """Make ``task`` (a ``django.tasks`` task) a Celery task named by its ``module_path``."""
    if isinstance(current_app.tasks.get(task.module_path), FrameworkTask):
        return
    shared_task(
        base=FrameworkTask,
        name=task.module_path,
        framework_task=task,
        qos=qos_for_priority(task.priority),
    )(_runner(task))


def register_framework_tasks(module: Any) -> None:
    """Every ``django.tasks`` task defined at the top of ``module``."""
    for value in vars(module).values():
        if isinstance(value, Task) and value.func.__module__ == module.__name__:
            register_framework_task(value)
