"""Event handlers that ship with the Task starter."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.core.mail import send_mail

from lime_task.events import event_handler

logger = logging.getLogger(__name__)
SUBJECT = "Task failed: {task} ({application})"


@event_handler("core.task.*.failure.v1")
def email_on_failure(event: dict[str, Any]) -> None:
    """Mail ``LIME_TASK_FAILURE_EMAILS`` (comma-separated addresses) when a task fails."""
    recipients = settings.LIME_TASK_FAILURE_EMAILS
    if not recipients:
        return
    error = event.get("error") or {}
    lines = [
        f"Task:        {event.get('task_name')}",
        f"Task id:     {event.get('task_id')}",
        f"Application: {event.get('application')}",
        f"Run as:      {event.get('user') or '-'}",
        f"Finished:    {event.get('finished_at')}",
        f"Error:       {error.get('type', '-')}: {error.get('message', '')}",
        f"Reason:      {event.get('reason') or '-'}",
        f"Result:      {json.dumps(event.get('result'))}",
    ]
    send_mail(
        SUBJECT.format(task=event.get("task_name"), application=event.get("application")),
        "\n".join(lines),
        settings.DEFAULT_FROM_EMAIL,
        recipients,
    )
    logger.info("Mailed %d recipients about failed task %s", len(recipients), event.get("task_id"))
