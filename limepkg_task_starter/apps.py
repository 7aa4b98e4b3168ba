from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings


class TaskStarterConfig(AppConfig):
    name = "limepkg_task_starter"
    verbose_name = "Task starter"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from lime_task.registry import load_packages

        # Their signal receivers are connected in this order: run_logs' before tracking's, so
        # that a run's log is written in full before its outcome is recorded.
        from limepkg_task_starter import (  # noqa: F401 - connect their signal receivers
            run_logs,
            run_search,
            task_framework,
            tracking,
        )

        load_packages(settings.LIME_PACKAGES)
