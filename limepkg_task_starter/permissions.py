"""The permissions the Task starter checks, by their full names."""

from __future__ import annotations

from typing import Final

VIEW_RUNS: Final = "limepkg_task_starter.view_taskrun"
START: Final = "limepkg_task_starter.start_task"
IMPERSONATE: Final = "limepkg_task_starter.start_task_as_impersonation_user"
VIEW_TRACEBACK: Final = "limepkg_task_starter.view_traceback"
CANCEL: Final = "limepkg_task_starter.cancel_run"
PAUSE_QUEUE: Final = "limepkg_task_starter.pause_queue"
PAUSE_SCHEDULE: Final = "limepkg_task_starter.pause_schedule"
