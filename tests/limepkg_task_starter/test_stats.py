"""Success rates, percentiles and the hourly statistics the task handlers roll up."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from limepkg_task_starter import selectors
from limepkg_task_starter.models import Application, TaskRun, TaskStatsHour
from limepkg_task_starter.services.stats import stats_rollup
from limepkg_task_starter.stats import Outcomes, bucket_middle, bucket_of, group_hours
from limepkg_task_starter.templatetags.task_starter import duration
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

NOW = timezone.now().replace(minute=30, second=0, microsecond=0)


def test_percentiles_are_within_a_fifth_of_the_exact_value() -> None:
    rng = random.Random(7)
    durations = sorted(rng.lognormvariate(-1, 1.2) for _ in range(5000))
    outcomes = Outcomes()
    for seconds in durations:
        outcomes.add_run("SUCCESS", seconds)
    for fraction in (0.5, 0.95):
        exact = durations[int(fraction * len(durations)) - 1]
        estimate = outcomes.percentile(fraction)
        assert estimate is not None and abs(estimate - exact) / exact < 0.2


def test_buckets_grow_by_the_square_root_of_two() -> None:
    assert bucket_of(0.0005) == 0 and bucket_of(0.0015) == 2 and bucket_of(1e9) == 43
    assert bucket_middle(21) == pytest.approx(0.001 * 2**10 * 2**0.25)


def run(application: Application, task: str, status: str, sent: Any, seconds: float) -> None:
    TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=application,
        task_name=task,
        status=status,
        created_at=sent,
        started_at=sent,
        finished_at=sent + timedelta(seconds=seconds),
    )


@pytest.fixture
def history(pages_application: Application) -> Application:
    """DUMMY: 3 days ago 4 successes (1 s); 5 hours ago 1 success, 1 failure (10 s);
    30 minutes ago 1 failure (0.1 s) and one still running. EXAMPLE: 10 days ago, 1 success."""
    for _ in range(4):
        run(pages_application, DUMMY, "SUCCESS", NOW - timedelta(days=3), 1)
    run(pages_application, DUMMY, "SUCCESS", NOW - timedelta(hours=5), 10)
    run(pages_application, DUMMY, "FAILURE", NOW - timedelta(hours=5), 10)
    run(pages_application, DUMMY, "FAILURE", NOW - timedelta(minutes=30), 0.1)
    TaskRun.objects.create(
        id="still-running",
        application=pages_application,
        task_name=DUMMY,
        status="STARTED",
        created_at=NOW - timedelta(minutes=10),
    )
    run(pages_application, EXAMPLE, "SUCCESS", NOW - timedelta(days=10), 1)
    return pages_application


def check(stats: selectors.TaskStats) -> None:
    assert (stats.day.succeeded, stats.day.failed) == (1, 2)
    assert (stats.week.succeeded, stats.week.failed) == (5, 2)
    assert stats.week.success_rate == pytest.approx(5 / 7)


def hours_check(application: Application) -> None:
    hours = selectors.task_hours(application=application, task_name=DUMMY, now=NOW)
    assert len(hours) in (168, 169)
    assert sum(outcomes.finished for _, outcomes in hours) == 7
    assert sum(outcomes.failed for hour, outcomes in hours if hour > NOW - timedelta(hours=1)) == 1


def test_before_any_rollup_the_runs_themselves_are_counted(history: Application) -> None:
    check(selectors.task_stats(application=history, task_names=[DUMMY], now=NOW)[DUMMY])
    hours_check(history)


def test_the_rollup_gives_the_same_numbers_from_a_few_rows(history: Application) -> None:
    for _ in range(10):  # a day per call, until the last closed hour
        stats_rollup(now=NOW)
    history.refresh_from_db()
    assert history.stats_through == NOW.replace(minute=0) - timedelta(hours=2)
    assert TaskStatsHour.objects.filter(task_name=DUMMY).count() == 2  # two hours had runs
    assert not TaskStatsHour.objects.filter(task_name=EXAMPLE).exists()  # older than 7 days
    stats = selectors.task_stats(application=history, task_names=[DUMMY], now=NOW)[DUMMY]
    check(stats)
    hours_check(history)
    assert stats.week.percentile(0.5) == pytest.approx(1, rel=0.2)
    assert stats.day.percentile(0.95) == pytest.approx(10, rel=0.2)
    assert stats_rollup(now=NOW) == 0  # nothing left to do


def test_the_task_list_shows_rates_and_durations_in_constant_queries(
    history: Application,
) -> None:
    client = Client()
    client.force_login(make_user("viewer", perms=("view",), applications=(history,)))
    with CaptureQueriesContext(connection) as captured:
        page = client.get("/admin/task-starter/demo/").content.decode()
    assert '33 % <span class="ts-quiet">of 3</span>' in page
    before = len(captured)
    run(history, EXAMPLE, "SUCCESS", NOW - timedelta(hours=1), 2)
    with CaptureQueriesContext(connection) as captured:
        client.get("/admin/task-starter/demo/")
    assert len(captured) == before


def test_the_task_page_has_the_numbers_and_the_charts_data(history: Application) -> None:
    client = Client()
    client.force_login(make_user("viewer", perms=("view",), applications=(history,)))
    page = client.get(f"/admin/task-starter/demo/tasks/{DUMMY}/").content.decode()
    assert "Last 7 days</th><td>7</td><td>71 %</td>" in page
    assert 'id="ts-chart-data"' in page and "uPlot.iife.min" in page


def test_the_chart_has_the_day_by_the_hour_and_the_week_in_wider_bins(
    history: Application,
) -> None:
    client = Client()
    client.force_login(make_user("viewer", perms=("view",), applications=(history,)))
    chart = client.get(f"/admin/task-starter/demo/tasks/{DUMMY}/").context["chart"]
    day, week = chart["day"], chart["week"]
    assert len(day["start"]) == 24 and day["width"] == 3600
    assert (sum(day["succeeded"]), sum(day["failed"])) == (1, 2)
    assert week["width"] == 4 * 3600 and len(week["start"]) in (42, 43)
    assert (sum(week["succeeded"]), sum(week["failed"])) == (5, 2)
    busiest = week["succeeded"].index(4)
    assert week["p50"][busiest] == pytest.approx(1, rel=0.2)


def test_grouped_hours_add_up_and_start_on_the_bins_boundary() -> None:
    start = datetime(2026, 11, 30, 1, tzinfo=UTC)
    hours = []
    for offset in range(10):
        outcomes = Outcomes()
        outcomes.add_run("SUCCESS", 1.0)
        hours.append((start + timedelta(hours=offset), outcomes))
    bins = group_hours(hours, width=4)
    assert [hour.hour for hour, _ in bins] == [1, 4, 8]
    assert [outcomes.succeeded for _, outcomes in bins] == [3, 4, 3]


def test_a_duration_under_a_millisecond_is_not_called_zero() -> None:
    assert duration(0.0004) == "< 1 ms"
    assert duration(0.0015) == "2 ms"
