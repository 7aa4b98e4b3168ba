"""Recording runs in the Task starter history from solution code.

from limepkg_task_starter.db import save_task_id, track_current_task
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from celery import current_task

from lime_task.application import LimeApplication, as_application
from limepkg_task_starter.services.history import run_record_in_history

logger = logging.getLogger(__name__)


def save_task_id(
    app: LimeApplication | str, task_path: str, task_id: str, arguments: Mapping[str, Any]
) -> None:
    """Show a task you started with ``lime_task.send_task`` in the history.

    ``task_path`` is the task's full import path, ``arguments`` its arguments by name.
    """
    run_record_in_history(
        application_name=as_application(app).name,
        task_name=task_path,
        task_id=str(task_id),
        arguments=arguments,
    )


def track_current_task(
    app: LimeApplication | str, task: Callable[..., Any] | str, arguments: Mapping[str, Any]
) -> None:
    """Call inside a running task (a scheduled one, say) to show this run in the history.

    ``task`` is the task function or its full name; ``arguments`` its arguments by name.
    """
    request = current_task.request if current_task else None
    task_id = getattr(request, "id", None)
    if task_id is None or getattr(request, "is_eager", False):
        logger.debug("track_current_task called outside a worker run; nothing recorded")
        return
    task_name = task if isinstance(task, str) else str(getattr(task, "name", task))
    run_record_in_history(
        application_name=as_application(app).name,
        task_name=task_name,
        task_id=str(task_id),
        arguments=arguments,
    )
