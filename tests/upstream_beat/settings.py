"""Settings for upstream's scheduler tests: upstream's test project, plus this app (its lease and
schedule declarations) and the task handler config the scheduler reads."""

from __future__ import annotations

import django_stubs_ext
from t.proj.settings import *  # noqa: F403 - upstream's test project, from its sdist

from lime_task.config import TasksConfig

django_stubs_ext.monkeypatch()  # as the project's settings do: ModelAdmin[...] at run time

INSTALLED_APPS = [
    *INSTALLED_APPS,  # noqa: F405
    "django_celery_results",
    "limepkg_task_starter",
]
LIME_TASKS = TasksConfig(broker_connection_string="memory://", backend_connection_string=None)
LIME_PACKAGES: list[str] = []
LIME_TASK_BACKEND = "lime_task.testing.InMemoryBackend"
LIME_TASK_EVENTS = False
