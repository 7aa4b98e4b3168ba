"""The tasks solution packages declare, and loading those packages."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from types import ModuleType

from celery import current_app

from lime_task.decorator import LimeTask
from lime_task.exceptions import UnknownTaskError
from lime_task.framework import register_framework_tasks
from lime_task.schedule import ScheduledTask

logger = logging.getLogger(__name__)


def get_task(name: str) -> LimeTask:
    """The registered ``@task`` called ``name``; Celery internals and other names are refused."""
    found = current_app.tasks.get(name)
    if not isinstance(found, LimeTask):
        raise UnknownTaskError(
            f"Unknown task {name!r}: not a registered @task. "
            "Is its solution package in LIME_PACKAGES and its module in get_task_modules()?"
        )
    return found


def registered_tasks() -> dict[str, LimeTask]:
    return {
        name: found
        for name, found in sorted(current_app.tasks.items())
        if isinstance(found, LimeTask)
    }


def load_packages(packages: Iterable[str]) -> list[ModuleType]:
    """Import each solution package's ``tasks`` package and the modules it lists.

    A package's ``tasks.get_task_modules()`` returns the modules holding its tasks; importing them
    registers the tasks with Celery, in the web process and in the worker alike, and the
    ``django.tasks`` tasks among them are registered as Celery tasks of their own name.
    """
    modules: list[ModuleType] = []
    for package in packages:
        tasks_package = importlib.import_module(f"{package}.tasks")
        get_modules = getattr(tasks_package, "get_task_modules", None)
        if get_modules is None:
            logger.warning("%s.tasks has no get_task_modules(): no tasks loaded", package)
            continue
        modules.extend(get_modules())
    for module in modules:
        register_framework_tasks(module)
    return modules


def load_scheduled_tasks(packages: Iterable[str]) -> list[tuple[str, ScheduledTask]]:
    """Each package's ``tasks.register_scheduled_tasks()``, as (package, scheduled task) pairs."""
    declared: list[tuple[str, ScheduledTask]] = []
    for package in packages:
        tasks_package = importlib.import_module(f"{package}.tasks")
        register = getattr(tasks_package, "register_scheduled_tasks", None)
        if register is None:
            continue
        for scheduled in register():
            if not isinstance(scheduled, ScheduledTask):
                raise TypeError(
                    f"{package}.tasks.register_scheduled_tasks() returned {scheduled!r}, "
                    "not a ScheduledTask"
                )
            declared.append((package, scheduled))
    return declared
