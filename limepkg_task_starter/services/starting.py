"""Starting a task as a person: the one policy every way of starting goes through.

The Task starter page, the API, "Run again with same arguments" and a schedule's "Run now" all
call :func:`run_start`. It decides, in this order and the same way for each:

1. the person may start tasks (``start_task``);
2. the application exposes the task, and it is a registered ``@task``;
3. the person may run it as the chosen user: themselves always; anyone else (the configured
   impersonation user, a schedule's session user, the user a rerun ran as) only with
   ``start_task_as_impersonation_user``, never an inactive user, and a superuser only if they
   are one themselves;
4. the arguments fit the task's signature.

Only then is the run recorded, its message sent after commit, and one audit entry written.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from lime_task import headers
from lime_task.application import LimeApplication
from lime_task.dispatch import prepare
from lime_task.exceptions import NotFoundError
from lime_task.registry import get_task
from lime_task.status import Origin
from limepkg_task_starter.arguments import ArgumentsError, check_arguments, named_arguments
from limepkg_task_starter.models import Application, AuditAction, AuditEntry, TaskRun
from limepkg_task_starter.permissions import IMPERSONATE, START
from limepkg_task_starter.schedule_summary import periodic_headers
from limepkg_task_starter.services.sending import run_send

MAY_NOT_START = "You may not start tasks."
NOT_EXPOSED = "{task} is not a task of application {application}."
NO_IMPERSONATION_USER = "Application {application} has no impersonation user configured."
MAY_NOT_IMPERSONATE = "You may not start tasks as {user}."
RUN_AS_USER_MISSING = "The user {user} does not exist."
RUN_AS_USER_INACTIVE = "The user {user} is inactive."
RUN_AS_USER_SUPERUSER = "The user {user} is a superuser; only a superuser may start tasks as it."
RUN_NOW = "Run now: {schedule}"
SCHEDULE_ARGUMENTS_UNREADABLE = (
    "The schedule's arguments cannot be read ({error}): correct them in the admin."
)
RUN_NOW_DISABLED = (
    "{task} is disabled in application {application}'s configuration (scheduled_tasks): its "
    "schedule runs a stand-in that only records a Skipped run, so Run now does not start it. "
    "Enable it in the configuration first."
)


class StartRefusedError(PermissionError):
    """The person may not start this task this way; the message says why."""


class ScheduleDisabledError(RuntimeError):
    """Run now on a schedule whose task the application's configuration disables."""


class RunAs(StrEnum):
    """Who a run runs as, when it is not a user named outright."""

    ACTOR = "actor"  # the person starting it
    IMPERSONATION_USER = "impersonation"  # the application's configured impersonation user


def run_start(
    *,
    actor: Any,
    application: Application,
    task_name: str,
    arguments: Any,
    run_as: RunAs | str = RunAs.ACTOR,
    origin: Origin,
    language: str | None = None,
    rerun_of: TaskRun | None = None,
    detail: str = "",
) -> TaskRun:
    """Start ``task_name`` for ``actor``, with ``arguments`` as decoded JSON (object or array).

    ``run_as`` is :class:`RunAs` or a user name. Raises ``StartRefusedError`` (permission, run-as
    user), ``NotFoundError`` / ``UnknownTaskError`` (not a task of this application) or
    ``ArgumentsError`` (what is wrong with which argument); nothing is recorded then. A broker
    that is down gives a run recorded as not sent, not an error.
    """
    if not actor.has_perm(START):
        raise StartRefusedError(MAY_NOT_START)
    if task_name not in application.exposed_tasks:
        raise NotFoundError(NOT_EXPOSED.format(task=task_name, application=application.name))
    task = get_task(task_name)
    user_name = _run_as(actor=actor, application=application, run_as=run_as)
    checked = check_arguments(task, arguments)

    app = LimeApplication(
        application.name,
        user_name=user_name,
        language=language or application.language,
    )
    dispatch = prepare(task_name, app, [], checked)
    with transaction.atomic():
        run = run_send(
            dispatch=dispatch,
            origin=origin,
            started_by=actor,
            arguments=checked,
            rerun_of=rerun_of,
        )
        AuditEntry.objects.create(
            actor=actor,
            actor_username=actor.get_username(),
            action=AuditAction.RERUN if origin == Origin.RERUN else AuditAction.START,
            application=application.name,
            task_name=task_name,
            run_as=user_name,
            arguments=checked,
            run=run,
            detail=detail,
        )
    run.refresh_from_db(fields=["status", "sent", "reason"])
    return run


def _run_as(*, actor: Any, application: Application, run_as: RunAs | str) -> str:
    """The user name the run runs as, once the actor is allowed to run it as them."""
    if run_as == RunAs.ACTOR:
        return str(actor.get_username())
    if run_as == RunAs.IMPERSONATION_USER:
        name = application.impersonate_user
        if not name:
            raise StartRefusedError(NO_IMPERSONATION_USER.format(application=application.name))
    else:
        name = str(run_as)
    if name == actor.get_username():
        return name
    if not actor.has_perm(IMPERSONATE):
        raise StartRefusedError(MAY_NOT_IMPERSONATE.format(user=name))
    target = get_user_model()._default_manager.filter(username=name).first()
    if target is None:
        raise StartRefusedError(RUN_AS_USER_MISSING.format(user=name))
    if not target.is_active:
        raise StartRefusedError(RUN_AS_USER_INACTIVE.format(user=name))
    if target.is_superuser and not actor.is_superuser:
        raise StartRefusedError(RUN_AS_USER_SUPERUSER.format(user=name))
    return name


def run_rerun(*, actor: Any, run: TaskRun, detail: str = "") -> TaskRun:
    """Start the run's task again with its arguments, as the same kind of user, linked to it.

    A run that ran as the application's impersonation user runs as it again (which needs the
    impersonation permission); any other runs as the person asking.
    """
    application = run.application
    ran_as_impersonation = (
        bool(run.run_as)
        and run.run_as == application.impersonate_user
        and run.run_as != actor.get_username()
    )
    if run.arguments is not None:
        arguments: Any = run.arguments
    else:  # sent from code: its arguments by position and by name
        arguments = named_arguments(get_task(run.task_name), run.args, run.kwargs)
    return run_start(
        actor=actor,
        application=application,
        task_name=run.task_name,
        arguments=arguments,
        run_as=RunAs.IMPERSONATION_USER if ran_as_impersonation else RunAs.ACTOR,
        origin=Origin.RERUN,
        rerun_of=run,
        detail=detail,
    )


def schedule_run_now(*, actor: Any, application: Application, periodic: Any) -> TaskRun:
    """Start a schedule's task now, with its arguments, as its session user: a schedule
    declared in code or one added in the admin for the application, through the start policy.

    A task the application's configuration disables (``scheduled_tasks: {task: {enabled:
    false}}``) is refused, after the start permission: the scheduled path would only record a
    Skipped run, and a person who asked for the task to run now should hear at once that it
    will not, and why, rather than find a Skipped run later (or a real run the configuration
    forbids).
    """
    if not actor.has_perm(START):
        raise StartRefusedError(MAY_NOT_START)
    schedule_run_now_allowed(application=application, task_name=periodic.task)
    values = periodic_headers(periodic)
    return run_start(
        actor=actor,
        application=application,
        task_name=periodic.task,
        arguments=schedule_arguments(periodic),
        run_as=values.get(headers.USER) or RunAs.ACTOR,
        origin=Origin.SCHEDULE,
        language=values.get(headers.LANGUAGE),
        detail=RUN_NOW.format(schedule=periodic.name),
    )


def schedule_run_now_allowed(*, application: Application, task_name: str) -> None:
    """Raise ``ScheduleDisabledError`` when the application's config disables the scheduled
    task (asked before the confirmation too, so nobody confirms what will be refused)."""
    if not application.typed_config.scheduled_task_enabled(task_name):
        raise ScheduleDisabledError(
            RUN_NOW_DISABLED.format(task=task_name, application=application.name)
        )


def schedule_arguments(periodic: Any) -> Any:
    """The arguments a schedule sends: its positional ones, or all of them by name when a row
    added in the admin has keyword arguments too. Text that is no JSON is refused as
    arguments, where Run now was asked."""
    try:
        args = json.loads(periodic.args or "[]")
        kwargs = json.loads(periodic.kwargs or "{}")
    except ValueError as error:
        raise ArgumentsError([SCHEDULE_ARGUMENTS_UNREADABLE.format(error=error)]) from error
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        shapes = "args is not a list or kwargs not an object"
        raise ArgumentsError([SCHEDULE_ARGUMENTS_UNREADABLE.format(error=shapes)])
    if not kwargs:
        return args
    try:
        task = get_task(periodic.task)
    except NotFoundError:
        return args  # the start policy says the task is unknown
    return named_arguments(task, args, kwargs)
