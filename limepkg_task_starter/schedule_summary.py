"""What the Task starter shows about a schedule: its cron in words and its next runs."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from cron_descriptor import get_description
from django_celery_beat.models import CrontabSchedule
from django_celery_beat.tzcrontab import TzAwareCrontab

from limepkg_task_starter.models import ScheduleDeclaration

NEXT_RUNS = 5


def cron_expression(crontab: CrontabSchedule) -> str:
    return " ".join(
        [
            crontab.minute,
            crontab.hour,
            crontab.day_of_month,
            crontab.month_of_year,
            crontab.day_of_week,
        ]
    )


def next_runs(
    crontab: CrontabSchedule, *, after: datetime.datetime, count: int = NEXT_RUNS
) -> list[datetime.datetime]:
    """The next ``count`` run times in the crontab's timezone, as Celery computes them."""
    zone = ZoneInfo(str(crontab.timezone))
    schedule = TzAwareCrontab(
        minute=crontab.minute,
        hour=crontab.hour,
        day_of_week=crontab.day_of_week,
        day_of_month=crontab.day_of_month,
        month_of_year=crontab.month_of_year,
        tz=zone,
    )
    runs: list[datetime.datetime] = []
    last = after.astimezone(zone)
    for _ in range(count):
        start, delta, _now = schedule.remaining_delta(last, tz=zone)
        # Wall-clock arithmetic can land in a DST gap: normalise through UTC, as the clock does.
        following = (start + delta).astimezone(datetime.UTC).astimezone(zone)
        if following <= last:  # a safety net: never loop on the same instant
            following = last + datetime.timedelta(minutes=1)
        runs.append(following)
        last = following
    return runs


@dataclass(frozen=True)
class ScheduleSummary:
    declaration: ScheduleDeclaration
    expression: str
    words: str
    timezone: str
    enabled: bool
    next_runs: list[datetime.datetime]


def summarise(declaration: ScheduleDeclaration, *, now: datetime.datetime) -> ScheduleSummary:
    periodic = declaration.periodic_task
    crontab = periodic.crontab
    expression = cron_expression(crontab)
    return ScheduleSummary(
        declaration=declaration,
        expression=expression,
        words=get_description(expression),
        timezone=str(crontab.timezone),
        enabled=periodic.enabled,
        next_runs=next_runs(crontab, after=now) if periodic.enabled else [],
    )
