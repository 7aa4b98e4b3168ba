"""Rolling closed hours of runs up into hourly statistics, for the pages' success rates,
percentiles and charts. The task handlers call it with their heartbeat; it does at most a day's
worth of hours per application per call, so a first backfill of a large history is spread out."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from limepkg_task_starter import selectors
from limepkg_task_starter.models import DURATION_COLUMNS, Application, TaskStatsHour
from limepkg_task_starter.stats import floor_hour

logger = logging.getLogger(__name__)

BACKFILL = timedelta(days=7)
HOURS_PER_CALL = 24


def stats_rollup(*, now: datetime | None = None) -> int:
    """Roll up every application's closed hours not rolled up yet; the number of hours done."""
    now = now or timezone.now()
    closed = floor_hour(now - selectors.LIVE_WINDOW)
    done = 0
    for name in Application.objects.values_list("name", flat=True):
        with transaction.atomic():
            # One task handler rolls an application up at a time; the others skip it.
            application = (
                Application.objects.select_for_update(skip_locked=True)
                .only("name", "stats_through")
                .filter(name=name)
                .first()
            )
            if application is None:
                continue
            start = max(
                application.stats_through or floor_hour(now - BACKFILL),
                floor_hour(now - BACKFILL),
            )
            end = min(closed, start + timedelta(hours=HOURS_PER_CALL))
            if start >= end:
                continue
            summed = selectors.outcomes_by_hour(application=application, start=start, end=end)
            TaskStatsHour.objects.filter(
                application=application, hour__gte=start, hour__lt=end
            ).delete()
            TaskStatsHour.objects.bulk_create(
                TaskStatsHour(
                    application=application,
                    task_name=task_name,
                    hour=hour,
                    succeeded=outcomes.succeeded,
                    failed=outcomes.failed,
                    other=outcomes.other,
                    **dict(zip(DURATION_COLUMNS, outcomes.durations, strict=True)),
                )
                for (task_name, hour), outcomes in summed.items()
            )
            Application.objects.filter(pk=application.pk).update(stats_through=end)
        done += int((end - start).total_seconds() // 3600)
    return done


def stats_purge(*, older_than: datetime) -> int:
    return int(TaskStatsHour.objects.filter(hour__lt=older_than).delete()[0])
