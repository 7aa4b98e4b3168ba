"""Writing the schedules declared in code into django-celery-beat's tables, per application."""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from lime_task import headers
from lime_task.config import tasks_config
from lime_task.routing import route_task
from lime_task.schedule import ScheduledTask
from limepkg_task_starter.models import Application, ScheduleDeclaration

logger = logging.getLogger(__name__)

UNKNOWN_USER = (
    "Scheduled task {task} for application {application} runs as user {user}, "
    "who does not exist: not scheduled."
)
UNKNOWN_TASK = "Scheduled task {task} (from {package}) is not a registered @task: not scheduled."
REMOVED = "Removed from code on {date}: disabled by the schedule sync."
NOT_SYNCED = "Schedules of application {application} not synced: {error}"
DESCRIPTION = "Declared in code by {package}. Cron, timezone and enabled may be changed here."


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)


def application_timezone(application: Application) -> str:
    return str(application.config.get("timezone") or tasks_config().timezone)


def _keyed(declared: list[tuple[str, ScheduledTask]]) -> list[tuple[str, str, ScheduledTask]]:
    """A stable key per declaration: the task name, then name#2, #3 for more of the same task."""
    seen: Counter[str] = Counter()
    keyed = []
    for package, scheduled in declared:
        seen[scheduled.task_name] += 1
        count = seen[scheduled.task_name]
        key = scheduled.task_name if count == 1 else f"{scheduled.task_name}#{count}"
        keyed.append((key, package, scheduled))
    return keyed


def _crontab_fields(crontab: CrontabSchedule) -> dict[str, str]:
    return {
        "minute": crontab.minute,
        "hour": crontab.hour,
        "day_of_week": crontab.day_of_week,
        "day_of_month": crontab.day_of_month,
        "month_of_year": crontab.month_of_year,
        "timezone": str(crontab.timezone),
    }


def _crontab(declared: dict[str, str]) -> CrontabSchedule:
    found = CrontabSchedule.objects.filter(**declared).first()
    return found or CrontabSchedule.objects.create(**declared)


def _adopt_or_create(name: str, wanted: dict[str, str], code_owned: dict[str, Any]) -> Any:
    """The periodic task for a new declaration. One of that name that no declaration holds (left
    by an application deleted before its schedules followed it) is taken over, not duplicated:
    beat refuses a second row of the same name."""
    periodic = PeriodicTask.objects.filter(name=name, declaration__isnull=True).first()
    if periodic is None:
        return PeriodicTask.objects.create(
            name=name, crontab=_crontab(wanted), enabled=True, **code_owned
        )
    for field_name, value in code_owned.items():
        setattr(periodic, field_name, value)
    periodic.crontab, periodic.enabled = _crontab(wanted), True
    periodic.interval = periodic.solar = periodic.clocked = None
    periodic.save()
    return periodic


def _sync_application(
    application: Application,
    keyed: list[tuple[str, str, ScheduledTask]],
    users: set[str],
    config: Any,
    report: SyncReport,
) -> None:
    existing = {
        d.key: d
        for d in ScheduleDeclaration.objects.filter(application=application).select_related(
            "periodic_task__crontab"
        )
    }
    zone = application_timezone(application)
    seen = set()
    for key, package, scheduled in keyed:
        if not scheduled.task_name:
            report.errors.append(UNKNOWN_TASK.format(task=scheduled.task, package=package))
            continue
        if scheduled.session.user_name not in users:
            report.errors.append(
                UNKNOWN_USER.format(
                    task=scheduled.task_name,
                    application=application.name,
                    user=scheduled.session.user_name,
                )
            )
            continue
        seen.add(key)
        wanted = {**scheduled.schedule.expression, "timezone": zone}
        route = route_task(
            config, scheduled.task_name, task_qos=getattr(scheduled.task, "qos", None)
        )
        code_owned: dict[str, Any] = {
            "task": scheduled.task_name,
            "args": json.dumps(list(scheduled.args)),
            "headers": json.dumps(
                {
                    headers.APPLICATION: application.name,
                    headers.USER: scheduled.session.user_name,
                    headers.LANGUAGE: scheduled.session.language,
                    headers.QUEUE_NAME: route.queue,
                }
            ),
            "queue": route.queue,
            "description": DESCRIPTION.format(package=package),
        }
        declaration = existing.get(key)
        if declaration is None:
            periodic = _adopt_or_create(f"{application.name}: {key}", wanted, code_owned)
            ScheduleDeclaration.objects.create(
                application=application,
                key=key,
                task_name=scheduled.task_name,
                package=package,
                periodic_task=periodic,
                declared=wanted,
            )
            report.created += 1
            continue
        periodic = declaration.periodic_task
        changed = [name for name, value in code_owned.items() if getattr(periodic, name) != value]
        for name in changed:
            setattr(periodic, name, code_owned[name])
        admin_kept = _crontab_fields(periodic.crontab) != declaration.declared
        if wanted != declaration.declared and not admin_kept:
            periodic.crontab = _crontab(wanted)
            changed.append("crontab")
        returned = declaration.removed_at is not None
        if returned:  # declared again after it was removed from code
            periodic.enabled = True
            declaration.removed_at = None
            changed.append("enabled")
        if changed:
            periodic.save()
            report.updated += 1
        if returned or declaration.declared != wanted or declaration.package != package:
            declaration.declared, declaration.package = wanted, package
            declaration.save(update_fields=["declared", "package", "removed_at"])
    for key, declaration in existing.items():
        if key in seen or declaration.removed_at is not None:
            continue
        periodic = declaration.periodic_task
        periodic.enabled = False
        periodic.description = REMOVED.format(date=timezone.now().date().isoformat())
        periodic.save()
        declaration.removed_at = timezone.now()
        declaration.save(update_fields=["removed_at"])
        report.removed += 1


@transaction.atomic
def schedule_sync(*, declared: list[tuple[str, ScheduledTask]]) -> SyncReport:
    """Make django-celery-beat hold every declared schedule for every application.

    Idempotent. What code owns (task, arguments, session, queue) follows the code; what an
    administrator may change (cron, timezone, enabled) is left alone once it differs from what
    the code declared. A schedule the code no longer declares is disabled and marked removed.
    """
    report = SyncReport()
    config = tasks_config()
    users = set(
        get_user_model()
        ._default_manager.filter(username__in={s.session.user_name for _, s in declared})
        .values_list("username", flat=True)
    )
    keyed = _keyed(declared)
    for application in Application.objects.all():
        # One application's trouble (a row beat refuses, a name taken) is logged and reported;
        # the others' schedules are still synced, and the scheduler keeps running.
        counted = SyncReport()
        try:
            with transaction.atomic():
                _sync_application(application, keyed, users, config, counted)
        except (DatabaseError, ValidationError) as refused:
            counted = SyncReport(errors=counted.errors)
            counted.errors.append(NOT_SYNCED.format(application=application.name, error=refused))
        report.created += counted.created
        report.updated += counted.updated
        report.removed += counted.removed
        report.errors += counted.errors
        problem = "\n".join(counted.errors)
        if application.schedules_problem != problem:  # shown in the admin until resolved
            Application.objects.filter(pk=application.pk).update(schedules_problem=problem)
    for error in report.errors:
        logger.error(error)
    return report
