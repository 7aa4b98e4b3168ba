"""The task handler configuration in force, as loaded by the Django settings."""

from __future__ import annotations

from django.conf import settings

from lime_task.config import TasksConfig


def tasks_config() -> TasksConfig:
    config: TasksConfig = settings.LIME_TASKS
    return config
