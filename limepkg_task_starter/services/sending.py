"""Sending: record a run as PENDING, then publish its message once that record is committed.

Every send comes down to :func:`run_send`: ``lime_task.send_task`` through the database backend,
and every start from the Task starter through ``starting.run_start``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from lime_task.dispatch import Dispatch, publish
from lime_task.exceptions import NotFoundError, TaskNotSentError
from lime_task.status import Origin, State
from limepkg_task_starter import selectors
from limepkg_task_starter.models import TaskRun
from limepkg_task_starter.services.history import UNKNOWN_APPLICATION, history_prune
from limepkg_task_starter.services.run_rows import run_insert

logger = logging.getLogger(__name__)

NOT_SENT = "Not sent: {reason}"


def run_send(
    *,
    dispatch: Dispatch,
    origin: Origin,
    started_by: Any = None,
    arguments: Mapping[str, Any] | None = None,
    rerun_of: TaskRun | None = None,
) -> TaskRun:
    """Record a run as PENDING and send its message once the record is committed.

    Runs started from the Task starter (with ``arguments`` by name) go into the history.
    When the broker cannot take the message the run is kept as FAILURE with the reason, and the
    caller gets :class:`TaskNotSentError` (inside an open transaction it is only recorded).

    One INSERT and one publish: the application is known from a cache, and the row is written
    with a statement prepared once (``run_rows``).
    """
    application = selectors.application_settings(name=dispatch.app.name)
    if application is None:
        raise NotFoundError(UNKNOWN_APPLICATION.format(name=dispatch.app.name))
    run = TaskRun(
        id=str(uuid.uuid4()),
        application_id=dispatch.app.name,
        task_name=dispatch.task_name,
        args=dispatch.args,
        kwargs=dispatch.kwargs,
        arguments=dict(arguments) if arguments is not None else None,
        in_history=arguments is not None,
        origin=origin,
        started_by=started_by,
        run_as=dispatch.app.user_name or "",
        language=dispatch.app.language,
        queue=dispatch.route.queue,
        route_type=dispatch.route.route_type,
        rerun_of=rerun_of,
        created_at=timezone.now(),
    )
    try:
        run_insert(run)
    except IntegrityError as error:
        # The application was deleted since the cache saw it; the foreign key caught it.
        selectors.application_settings_forget(name=dispatch.app.name)
        raise NotFoundError(UNKNOWN_APPLICATION.format(name=dispatch.app.name)) from error
    if run.in_history:
        history_prune(
            application_name=run.application_id,
            task_name=run.task_name,
            keep=application.limepkg_task_starter.task_history,
        )

    if connection.in_atomic_block:
        transaction.on_commit(lambda: _publish_or_record(dispatch, run), robust=True)
    else:
        _publish_or_record(dispatch, run)
    return run


def _publish_or_record(dispatch: Dispatch, run: TaskRun) -> None:
    try:
        publish(dispatch, run.id)
    except TaskNotSentError as error:
        logger.error("Task %s [%s] not sent: %s", run.task_name, run.id, error.reason)
        run.status = State.FAILURE
        run.sent = False
        run.reason = NOT_SENT.format(reason=error.reason)
        run.finished_at = timezone.now()
        TaskRun.objects.filter(id=run.id).update(
            status=run.status, sent=False, reason=run.reason, finished_at=run.finished_at
        )
        raise
