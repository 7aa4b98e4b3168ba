"""A pytest plugin: upstream's tests name ``schedulers.DatabaseScheduler`` and
``schedulers.ModelEntry`` through the module; point both at this project's classes."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("UPSTREAM_BEAT_SCHEDULER") == "stock":
        return
    from django_celery_beat import schedulers

    from limepkg_task_starter.scheduler import CachedEntry, TaskStarterScheduler

    schedulers.DatabaseScheduler = TaskStarterScheduler  # type: ignore[misc]
    schedulers.ModelEntry = CachedEntry  # type: ignore[misc]
