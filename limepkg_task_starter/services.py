"""Writes: every change to applications and runs goes through one of these functions."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Concat
from django.utils import timezone

from lime_task import headers
from lime_task.application import LimeApplication
from lime_task.dispatch import Dispatch, prepare, publish
from lime_task.exceptions import NotFoundError, TaskNotSentError
from lime_task.registry import get_task
from lime_task.status import State
from limepkg_task_starter.arguments import parse_arguments, task_parameters
from limepkg_task_starter.models import (
    ApiToken,
    Application,
    AuditAction,
    AuditEntry,
    Origin,
    ScheduleDeclaration,
    TaskRun,
    WorkerHeartbeat,
)
from limepkg_task_starter.selectors import application_exists

logger = logging.getLogger(__name__)

UNKNOWN_APPLICATION = "No application named {name!r}: create it in the admin or load its config."
NOT_SENT = "Not sent: {reason}"
WORKER_LOST = "Its worker stopped responding for more than {seconds:g} s; the run was ended."
NEVER_STARTED = "No task handler started it within {seconds:g} s (is one consuming queue "
TASK_ID_TAKEN = "Task id {task_id} belongs to another application"


def _application(name: str) -> Application:
    found = Application.objects.filter(name=name).only("name", "config").first()
    if found is None:
        raise NotFoundError(UNKNOWN_APPLICATION.format(name=name))
    return found


# --- Applications -------------------------------------------------------------------------


@transaction.atomic
def applications_import(*, data: Mapping[str, Any]) -> list[Application]:
    """Create or update applications from a Lime-style config: ``{name: {config: {...}}}``."""
    imported = []
    for name, section in data.items():
        config = (section or {}).get("config") or {}
        if not isinstance(config, dict):
            raise ValueError(f"{name}: 'config' must be a mapping")
        application, _ = Application.objects.update_or_create(
            name=str(name), defaults={"config": config}
        )
        imported.append(application)
    return imported


# --- Sending ------------------------------------------------------------------------------


def run_dispatch(
    *,
    dispatch: Dispatch,
    origin: Origin,
    started_by: AbstractBaseUser | None = None,
    arguments: Mapping[str, Any] | None = None,
    rerun_of: TaskRun | None = None,
) -> TaskRun:
    """Record a run as PENDING and send its message once the record is committed.

    Runs started from the Task starter (with ``arguments`` by name) go into the history.
    When the broker cannot take the message the run is kept as FAILURE with the reason, and the
    caller gets :class:`TaskNotSentError` (inside an open transaction it is only recorded).
    """
    in_history = arguments is not None
    if not application_exists(name=dispatch.app.name):
        raise NotFoundError(UNKNOWN_APPLICATION.format(name=dispatch.app.name))
    run = TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application_id=dispatch.app.name,
        task_name=dispatch.task_name,
        args=dispatch.args,
        kwargs=dispatch.kwargs,
        arguments=dict(arguments) if arguments is not None else None,
        in_history=in_history,
        origin=origin,
        started_by=started_by,
        run_as=dispatch.app.user_name or "",
        language=dispatch.app.language,
        queue=dispatch.route.queue,
        route_type=dispatch.route.route_type,
        rerun_of=rerun_of,
        created_at=timezone.now(),
    )
    if in_history:
        history_prune(application=_application(dispatch.app.name), task_name=run.task_name)

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


# --- Starting from the Task starter and the API --------------------------------------------

NOT_EXPOSED = "{task} is not a task of application {application}."
NO_IMPERSONATION_USER = "Application {application} has no impersonation user configured."
MAY_NOT_IMPERSONATE = "You may not start tasks as {user}."
IMPERSONATION_USER_MISSING = "The impersonation user {user} does not exist."
IMPERSONATION_USER_INACTIVE = "The impersonation user {user} is inactive."
IMPERSONATION_USER_SUPERUSER = (
    "The impersonation user {user} is a superuser; only a superuser may start tasks as it."
)
MAY_NOT_START = "You may not start tasks."


class StartRefusedError(PermissionError):
    """The person may not start this task this way; the message says why."""


def _run_as(*, user: Any, application: Application, as_impersonation: bool) -> str:
    if not as_impersonation:
        return str(user.get_username())
    name = application.impersonate_user
    if not name:
        raise StartRefusedError(NO_IMPERSONATION_USER.format(application=application.name))
    if not user.has_perm("limepkg_task_starter.start_task_as_impersonation_user"):
        raise StartRefusedError(MAY_NOT_IMPERSONATE.format(user=name))
    target = get_user_model()._default_manager.filter(username=name).first()
    if target is None:
        raise StartRefusedError(IMPERSONATION_USER_MISSING.format(user=name))
    if not target.is_active:
        raise StartRefusedError(IMPERSONATION_USER_INACTIVE.format(user=name))
    if target.is_superuser and not user.is_superuser:
        raise StartRefusedError(IMPERSONATION_USER_SUPERUSER.format(user=name))
    return name


def _start(
    *,
    user: Any,
    application: Application,
    task_name: str,
    arguments: dict[str, Any],
    as_impersonation: bool,
    origin: Origin,
    action: AuditAction,
    rerun_of: TaskRun | None = None,
) -> TaskRun:
    if not user.has_perm("limepkg_task_starter.start_task"):
        raise StartRefusedError(MAY_NOT_START)
    if task_name not in application.exposed_tasks:
        raise NotFoundError(NOT_EXPOSED.format(task=task_name, application=application.name))
    run_as = _run_as(user=user, application=application, as_impersonation=as_impersonation)
    app = LimeApplication(application.name, user_name=run_as, language=application.language)
    dispatch = prepare(task_name, app, [], arguments)
    with transaction.atomic():
        run = run_dispatch(
            dispatch=dispatch,
            origin=origin,
            started_by=user,
            arguments=arguments,
            rerun_of=rerun_of,
        )
        AuditEntry.objects.create(
            actor=user,
            actor_username=user.get_username(),
            action=action,
            application=application.name,
            task_name=task_name,
            run_as=run_as,
            arguments=arguments,
            run=run,
        )
    run.refresh_from_db(fields=["status", "sent", "reason"])
    return run


def run_start(
    *,
    user: Any,
    application: Application,
    task_name: str,
    arguments_json: str,
    as_impersonation: bool = False,
    origin: Origin = Origin.PAGE,
) -> TaskRun:
    """Start an exposed task with arguments typed as JSON, checked against its signature.

    Raises ``ArgumentsError`` (what is wrong with which argument), ``StartRefusedError``
    (permission, impersonation) or ``NotFoundError`` (not a task of this application); nothing
    is recorded then. A broker that is down gives a run recorded as not sent, not an error.
    """
    if task_name not in application.exposed_tasks:
        raise NotFoundError(NOT_EXPOSED.format(task=task_name, application=application.name))
    arguments = parse_arguments(get_task(task_name), arguments_json)
    return _start(
        user=user,
        application=application,
        task_name=task_name,
        arguments=arguments,
        as_impersonation=as_impersonation,
        origin=origin,
        action=AuditAction.START,
    )


def run_rerun(*, user: Any, run: TaskRun) -> TaskRun:
    """Start the run's task again with its arguments, as the same kind of user, linked to it."""
    application = run.application
    as_impersonation = (
        bool(run.run_as)
        and run.run_as == application.impersonate_user
        and (run.run_as != user.get_username())
    )
    arguments = run.arguments if run.arguments is not None else {}
    return _start(
        user=user,
        application=application,
        task_name=run.task_name,
        arguments=arguments,
        as_impersonation=as_impersonation,
        origin=Origin.RERUN,
        action=AuditAction.RERUN,
        rerun_of=run,
    )


def schedule_run_now(*, user: Any, declaration: ScheduleDeclaration) -> TaskRun:
    """Start a scheduled task now, with its schedule's arguments and session user."""
    if not user.has_perm("limepkg_task_starter.start_task"):
        raise StartRefusedError(MAY_NOT_START)
    periodic = declaration.periodic_task
    values = json.loads(periodic.headers or "{}")
    args = json.loads(periodic.args or "[]")
    app = LimeApplication(
        declaration.application_id,
        user_name=values.get(headers.USER),
        language=values.get(headers.LANGUAGE) or "en",
    )
    dispatch = prepare(declaration.task_name, app, list(args), {})
    with transaction.atomic():
        run = run_dispatch(
            dispatch=dispatch,
            origin=Origin.SCHEDULE,
            started_by=user,
            arguments=_named(declaration.task_name, args),
        )
        AuditEntry.objects.create(
            actor=user,
            actor_username=user.get_username(),
            action=AuditAction.START,
            application=declaration.application_id,
            task_name=declaration.task_name,
            run_as=app.user_name or "",
            arguments=run.arguments,
            run=run,
            detail=f"Run now: {periodic.name}",
        )
    run.refresh_from_db(fields=["status", "sent", "reason"])
    return run


def _named(task_name: str, args: list[Any]) -> dict[str, Any]:
    names = [p.name for p in task_parameters(get_task(task_name))]
    return dict(zip(names, args, strict=False))


# --- API tokens ---------------------------------------------------------------------------


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user: Any, name: str) -> tuple[ApiToken, str]:
    """A new token for ``user``; the key is returned once and only its hash is stored."""
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=api_token_hash(key))
    return token, key


# --- What the worker reports ----------------------------------------------------------------


@dataclass(frozen=True)
class StartedRun:
    task_id: str
    task_name: str
    application_name: str | None
    run_as: str
    language: str
    args: list[Any]
    kwargs: dict[str, Any]
    worker: str
    queue: str
    scheduled: bool


def run_mark_started(*, started: StartedRun, at: datetime) -> None:
    updated = TaskRun.objects.filter(id=started.task_id).update(
        status=State.STARTED,
        started_at=at,
        worker=started.worker,
        queue=started.queue or F("queue"),
    )
    if updated:
        return
    # Sent by something other than send_task (the scheduler, plain Celery): record it now.
    if started.application_name is None:
        logger.warning(
            "Task %s [%s] names no application; not recorded", started.task_name, started.task_id
        )
        return
    if not application_exists(name=started.application_name):
        logger.warning(
            "Task %s [%s]: unknown application %r; not recorded",
            started.task_name,
            started.task_id,
            started.application_name,
        )
        return
    TaskRun.objects.create(
        id=started.task_id,
        application_id=started.application_name,
        task_name=started.task_name,
        args=started.args,
        kwargs=started.kwargs,
        status=State.STARTED,
        origin=Origin.SCHEDULE if started.scheduled else Origin.CODE,
        run_as=started.run_as,
        language=started.language,
        queue=started.queue,
        worker=started.worker,
        created_at=at,
        started_at=at,
    )


def run_mark_finished(
    *,
    task_id: str,
    status: State,
    at: datetime,
    result: Any = None,
    error_type: str = "",
    traceback: str = "",
    reason: str = "",
) -> None:
    TaskRun.objects.filter(id=task_id).update(
        status=status,
        result=result,
        error_type=error_type,
        traceback=traceback,
        reason=reason,
        finished_at=at,
    )


SKIPPED = "Skipped: the task is disabled in the application configuration."


def run_mark_skipped(*, task_id: str, at: datetime) -> None:
    TaskRun.objects.filter(id=task_id).update(
        status=State.REVOKED, skipped=True, reason=SKIPPED, finished_at=at
    )


def run_set_progress(*, task_id: str, done: int, total: int, message: str = "") -> None:
    TaskRun.objects.filter(id=task_id).update(
        progress_done=max(done, 0), progress_total=max(total, 0), progress_message=message[:255]
    )


# --- History ------------------------------------------------------------------------------


def run_record_in_history(
    *,
    application_name: str,
    task_name: str,
    task_id: str,
    arguments: Mapping[str, Any],
    origin: Origin | None = None,
) -> None:
    """Show a run in the Task starter history with its arguments by name."""
    application = _application(application_name)
    changes: dict[str, Any] = {"in_history": True, "arguments": dict(arguments)}
    if origin is not None:
        changes["origin"] = origin
    updated = TaskRun.objects.filter(id=task_id, application=application).update(**changes)
    if not updated:
        if TaskRun.objects.filter(id=task_id).exists():
            raise NotFoundError(TASK_ID_TAKEN.format(task_id=task_id))
        TaskRun.objects.create(
            id=task_id,
            application=application,
            task_name=task_name,
            arguments=dict(arguments),
            in_history=True,
            origin=origin or Origin.CODE,
            created_at=timezone.now(),
        )
    history_prune(application=application, task_name=task_name)


def history_prune(*, application: Application, task_name: str) -> int:
    """Keep the latest N runs of a task in the history (N = the application's task_history).

    Reads at most N + a few rows through the history index, so its cost does not grow with the
    table. Runs leaving the history stay readable by ``get_status`` until ``result_expires``.
    """
    keep = application.task_history
    stale = list(
        TaskRun.objects.filter(application=application, task_name=task_name, in_history=True)
        .order_by("-created_at")
        .values_list("id", flat=True)[keep : keep + 100]
    )
    if not stale:
        return 0
    return TaskRun.objects.filter(id__in=stale).update(in_history=False)


# --- Keeping the record honest ------------------------------------------------------------


@dataclass(frozen=True)
class Reconciled:
    worker_lost: int
    never_started: int


def worker_heartbeat(*, hostname: str, at: datetime | None = None) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname, defaults={"last_seen": at or timezone.now()}
    )


def run_reconcile(
    *, worker_lost_after: float, pending_timeout: float, now: datetime | None = None
) -> Reconciled:
    """End runs that can no longer finish on their own.

    STARTED on a worker whose heartbeat stopped (or that never had one) becomes FAILURE; PENDING
    that no worker started within ``pending_timeout`` becomes FAILURE. If such a message still
    reaches a worker later, the worker's own report overwrites this verdict.
    """
    now = now or timezone.now()
    lost_before = now - timedelta(seconds=worker_lost_after)
    live = WorkerHeartbeat.objects.filter(last_seen__gte=lost_before).values("hostname")
    worker_lost = (
        TaskRun.objects.filter(status=State.STARTED, started_at__lt=lost_before)
        .exclude(worker__in=live)
        .update(
            status=State.FAILURE,
            finished_at=now,
            reason=WORKER_LOST.format(seconds=worker_lost_after),
        )
    )
    never_started = TaskRun.objects.filter(
        status=State.PENDING, created_at__lt=now - timedelta(seconds=pending_timeout)
    ).update(
        status=State.FAILURE,
        finished_at=now,
        reason=Concat(
            Value(NEVER_STARTED.format(seconds=pending_timeout)), F("queue"), Value("?)")
        ),
    )
    if worker_lost or never_started:
        logger.warning(
            "Reconciled runs: %d on lost workers, %d never started", worker_lost, never_started
        )
    return Reconciled(worker_lost=worker_lost, never_started=never_started)


def runs_purge_expired(
    *, older_than: datetime, batch_size: int = 1000, max_batches: int = 10
) -> int:
    """Delete runs older than ``result_expires`` in bounded batches (never one huge delete)."""
    deleted = 0
    for _ in range(max_batches):
        ids = list(
            TaskRun.objects.filter(created_at__lt=older_than)
            .filter(~Q(status__in=[State.PENDING, State.STARTED]))
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        deleted += TaskRun.objects.filter(id__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
    return deleted
