"""What the Task starter shows about a schedule: its cron in words, its next runs, whether it
is paused, and the runs due soon across an application's schedules."""

from __future__ import annotations

import datetime
import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

from cron_descriptor import get_description
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.tzcrontab import TzAwareCrontab

from lime_task import headers
from lime_task.config import tasks_config
from limepkg_task_starter.models import Application, ScheduleDeclaration, SchedulePause, TaskRun

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
    return list(islice(crontab_runs(crontab, after=after), count))


def crontab_runs(
    crontab: CrontabSchedule, *, after: datetime.datetime
) -> Iterator[datetime.datetime]:
    """Every run time after ``after``, in the crontab's timezone, one at a time: the Upcoming
    list merges these lazily, so an every-minute schedule costs only the runs it shows."""
    zone = ZoneInfo(str(crontab.timezone))
    schedule = TzAwareCrontab(
        minute=crontab.minute,
        hour=crontab.hour,
        day_of_week=crontab.day_of_week,
        day_of_month=crontab.day_of_month,
        month_of_year=crontab.month_of_year,
        tz=zone,
    )
    last = after.astimezone(zone)
    while True:
        start, delta, _now = schedule.remaining_delta(last, tz=zone)
        # Wall-clock arithmetic can land in a DST gap: normalise through UTC, as the clock does.
        following = (start + delta).astimezone(datetime.UTC).astimezone(zone)
        if following <= last:  # a safety net: never loop on the same instant
            following = last + datetime.timedelta(minutes=1)
        yield following
        last = following


def interval_runs(
    periodic: PeriodicTask, *, after: datetime.datetime
) -> Iterator[datetime.datetime]:
    """Every run time of an interval schedule after ``after``: one interval after its last run
    (or after it was last changed, as the scheduler counts), at once when that has passed."""
    interval = periodic.interval
    step = datetime.timedelta(**{interval.period: interval.every})
    base = periodic.last_run_at or periodic.date_changed or after
    following = max(base + step, after)
    while True:
        yield following
        following += step


def periodic_runs(
    periodic: PeriodicTask, *, after: datetime.datetime
) -> Iterator[datetime.datetime]:
    """A periodic task's run times after ``after``; none for a solar or one-off schedule (the
    page shows those in the admin's words only)."""
    if periodic.crontab_id is not None:
        return crontab_runs(periodic.crontab, after=after)
    if periodic.interval_id is not None:
        return interval_runs(periodic, after=after)
    return iter(())


def describe(periodic: PeriodicTask) -> tuple[str, str, str]:
    """A periodic task's schedule as (cron expression, words, timezone)."""
    if periodic.crontab_id is not None:
        expression = cron_expression(periodic.crontab)
        return expression, get_description(expression), str(periodic.crontab.timezone)
    if periodic.interval_id is not None:
        return "", str(periodic.interval).capitalize(), "UTC"
    return "", str(periodic.solar or periodic.clocked or "No schedule"), "UTC"


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


# --- The Schedules tab ------------------------------------------------------------------------

UPCOMING_WITHIN = datetime.timedelta(hours=24)
UPCOMING_LIMIT = 20


def periodic_headers(periodic: PeriodicTask) -> dict[str, Any]:
    """The headers a periodic task sends with each run; a row an administrator typed badly
    reads as none (the scheduler then sends it without an application, and the run fails)."""
    try:
        values = json.loads(periodic.headers or "{}")
    except ValueError:
        return {}
    return values if isinstance(values, dict) else {}


@dataclass(frozen=True)
class ScheduleRow:
    """One schedule as the Schedules tab and the API show it."""

    periodic: PeriodicTask
    declaration: ScheduleDeclaration | None
    expression: str
    words: str
    timezone: str
    pause: SchedulePause | None  # only while it is in force
    next_runs: list[datetime.datetime]
    last_run: TaskRun | None
    exposed: bool  # the application exposes its task (it can be started from the pages)
    disabled_in_config: bool  # ``scheduled_tasks: {task: {enabled: false}}``: a stand-in runs
    held_by_config: bool  # a declared schedule while ``enable_scheduled_tasks`` is off

    @property
    def id(self) -> int:
        return int(self.periodic.pk)

    @property
    def declared(self) -> bool:
        return self.declaration is not None

    @property
    def task_name(self) -> str:
        return str(self.periodic.task)

    @property
    def enabled(self) -> bool:
        return bool(self.periodic.enabled)

    @property
    def run_as(self) -> str:
        return str(periodic_headers(self.periodic).get(headers.USER) or "")


def schedule_row(
    periodic: PeriodicTask,
    *,
    application: Application,
    last_run: TaskRun | None,
    now: datetime.datetime,
    count: int = NEXT_RUNS,
) -> ScheduleRow:
    expression, words, zone = describe(periodic)
    declaration = getattr(periodic, "declaration", None)
    pause = getattr(periodic, "pause", None)
    if pause is not None and not pause.in_force(now):
        pause = None
    held = declaration is not None and not tasks_config().enable_scheduled_tasks
    return ScheduleRow(
        periodic=periodic,
        declaration=declaration,
        expression=expression,
        words=words,
        timezone=zone,
        pause=pause,
        next_runs=list(islice(_runs(periodic, pause, held, now), count)),
        last_run=last_run,
        exposed=periodic.task in application.exposed_tasks,
        disabled_in_config=not application.typed_config.scheduled_task_enabled(periodic.task),
        held_by_config=held,
    )


def _runs(
    periodic: PeriodicTask, pause: SchedulePause | None, held: bool, now: datetime.datetime
) -> Iterator[datetime.datetime]:
    """When it will fire: never while disabled, held or paused for good; after a pause that
    ends by itself, from its end on (the ticks it holds back are not run later)."""
    if not periodic.enabled or held or (pause is not None and pause.until is None):
        return iter(())
    after = max(now, pause.until) if pause is not None and pause.until is not None else now
    return periodic_runs(periodic, after=after)


def upcoming(
    rows: list[ScheduleRow],
    *,
    now: datetime.datetime,
    within: datetime.timedelta = UPCOMING_WITHIN,
    limit: int = UPCOMING_LIMIT,
) -> list[tuple[datetime.datetime, ScheduleRow]]:
    """The runs due within ``within`` across these schedules, soonest first, at most ``limit``.

    Each schedule's times are generated lazily and merged, so a schedule due every minute costs
    only the runs shown.
    """
    end = now + within

    def due(row: ScheduleRow) -> Iterator[tuple[datetime.datetime, int, ScheduleRow]]:
        for when in _runs(row.periodic, row.pause, row.held_by_config, now):
            if when > end:
                return
            yield when.astimezone(datetime.UTC), row.id, row

    merged = heapq.merge(*(due(row) for row in rows))
    return [(when, row) for when, _, row in islice(merged, limit)]
