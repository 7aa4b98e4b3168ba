"""The scheduler's own parts, in process: changes read incrementally, the lease, bookkeeping."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks

from limepkg_task_starter import scheduler as scheduler_module
from limepkg_task_starter.models import SchedulerLock
from limepkg_task_starter.scheduler import (
    UPSTREAM_PRIVATE_ATTRIBUTES,
    UPSTREAM_PRIVATE_METHODS,
    TaskStarterScheduler,
    acquire_lease,
    record_dispatches,
    release_lease,
)
from taskstarter.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(db: None) -> list[PeriodicTask]:
    daily = CrontabSchedule.objects.create(minute="0", hour="4", timezone="UTC")
    return [PeriodicTask.objects.create(name=f"job-{i}", task="t", crontab=daily) for i in range(3)]


@pytest.fixture
def loaded(rows: list[PeriodicTask], monkeypatch: pytest.MonkeyPatch) -> TaskStarterScheduler:
    monkeypatch.setattr(scheduler_module, "CHANGE_CHECK_SECONDS", 0.0)
    # It would close the test's connection, which holds the test's transaction.
    monkeypatch.setattr(scheduler_module, "close_old_connections", lambda: None)
    monkeypatch.setattr(scheduler_module, "COMMIT_MARGIN", datetime.timedelta(0))
    scheduler = TaskStarterScheduler(app=celery_app, lazy=True)
    assert set(scheduler.schedule) >= {"job-0", "job-1", "job-2"}
    return scheduler


def test_an_edit_replaces_one_entry_without_a_full_reload(loaded: TaskStarterScheduler) -> None:
    every_minute = CrontabSchedule.objects.create(minute="*", hour="*", timezone="UTC")
    periodic = PeriodicTask.objects.get(name="job-1")
    periodic.crontab = every_minute
    periodic.save()
    untouched = loaded.schedule["job-0"]

    with mock.patch.object(loaded, "all_as_schedule", side_effect=AssertionError("reload")):
        schedule = loaded.schedule

    assert schedule["job-1"].model.crontab_id == every_minute.id
    assert schedule["job-0"] is untouched


def test_an_edited_crontab_row_reaches_its_tasks(
    loaded: TaskStarterScheduler, rows: list[PeriodicTask]
) -> None:
    crontab = rows[0].crontab
    crontab.hour = "5"
    crontab.save()
    PeriodicTasks.update_changed()

    assert [loaded.schedule[f"job-{i}"].schedule.hour for i in range(3)] == [{5}, {5}, {5}]


def test_disabled_and_deleted_rows_leave_the_schedule(loaded: TaskStarterScheduler) -> None:
    PeriodicTask.objects.filter(name="job-0").update(enabled=False, date_changed=timezone.now())
    PeriodicTasks.update_changed()
    PeriodicTask.objects.get(name="job-2").delete()

    assert "job-0" not in loaded.schedule and "job-2" not in loaded.schedule
    assert "job-1" in loaded.schedule


def test_bookkeeping_is_one_batch_that_is_not_taken_for_an_edit(rows) -> None:
    before = PeriodicTasks.last_change()
    when = timezone.now()
    record_dispatches([(when, 7, row.pk) for row in rows])
    assert set(PeriodicTask.objects.values_list("last_run_at", "total_run_count")) == {(when, 7)}
    assert PeriodicTasks.last_change() == before


def test_one_lease_holder_at_a_time(db: None) -> None:
    assert acquire_lease(holder="a", seconds=30)
    assert not acquire_lease(holder="b", seconds=30)
    assert acquire_lease(holder="a", seconds=30)  # renewing


def test_an_expired_lease_is_taken_over(db: None) -> None:
    assert acquire_lease(holder="a", seconds=30)
    SchedulerLock.objects.update(expires_at=timezone.now() - datetime.timedelta(seconds=1))
    assert acquire_lease(holder="b")
    assert SchedulerLock.objects.get().holder == "b"


def test_a_released_lease_is_free(db: None) -> None:
    acquire_lease(holder="a")
    release_lease(holder="a")
    assert acquire_lease(holder="b")


@pytest.mark.parametrize(
    ("owner", "name"),
    [(owner, name) for owner, names in UPSTREAM_PRIVATE_METHODS.items() for name in names],
)
def test_the_upstream_methods_the_scheduler_relies_on_still_exist(owner: type, name: str) -> None:
    assert callable(getattr(owner, name, None)), f"{owner.__qualname__}.{name} is gone"


@pytest.mark.parametrize(
    ("owner", "name"),
    [(owner, name) for owner, names in UPSTREAM_PRIVATE_ATTRIBUTES.items() for name in names],
)
def test_the_upstream_attributes_the_scheduler_relies_on_still_exist(
    owner: type, name: str
) -> None:
    upstream = owner(app=celery_app, lazy=True)
    assert hasattr(upstream, name), f"{owner.__qualname__}().{name} is gone"


def test_a_schedule_edited_right_after_it_fired_keeps_that_run(
    loaded: TaskStarterScheduler,
) -> None:
    every_minute = CrontabSchedule.objects.create(minute="*", hour="*", timezone="UTC")
    PeriodicTask.objects.filter(name="job-1").update(
        crontab=every_minute, last_run_at=timezone.now() - datetime.timedelta(minutes=5)
    )
    PeriodicTasks.update_changed()
    entry = loaded.schedule["job-1"]
    assert entry.is_due().is_due
    count_before = entry.total_run_count

    fired = loaded.reserve(entry)  # dispatched; its bookkeeping waits for the next sync
    # An administrator saves the row before that sync: the row still has the old last run.
    edited = PeriodicTask.objects.get(name="job-1")
    edited.description = "edited right after it fired"
    edited.save()

    rebuilt = loaded.schedule["job-1"]

    assert rebuilt.model.description == "edited right after it fired"
    assert rebuilt.last_run_at == fired.last_run_at
    assert rebuilt.total_run_count == count_before + 1
    assert not rebuilt.is_due().is_due  # no second dispatch
    stored = PeriodicTask.objects.get(name="job-1")
    assert (stored.last_run_at, stored.total_run_count) == (fired.last_run_at, count_before + 1)


def test_a_paused_schedule_sends_nothing_until_its_pause_ends(
    loaded: TaskStarterScheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    from limepkg_task_starter.services.schedules import schedule_pause
    from tests.limepkg_task_starter.conftest import make_user

    pauser = make_user("pat", perms=("pause",))
    until = timezone.now() + datetime.timedelta(hours=1)
    paused = PeriodicTask.objects.get(name="job-0")
    schedule_pause(actor=pauser, application="demo", periodic_task=paused, until=until)

    with mock.patch.object(loaded, "apply_async") as sent:
        entry = loaded.schedule["job-0"]  # the change check reads the pause
        count = entry.model.total_run_count
        following = loaded.reserve(entry)
        loaded.apply_entry(entry)
        assert not sent.called
        assert following.model.total_run_count == count  # a skipped tick is not a run

        loaded.apply_entry(loaded.schedule["job-1"])
        assert sent.call_count == 1

        later = until + datetime.timedelta(seconds=1)
        monkeypatch.setattr(scheduler_module.timezone, "now", lambda: later)
        loaded.apply_entry(loaded.schedule["job-0"])  # the pause ended by itself
        assert sent.call_count == 2
    loaded._dirty.clear()  # nothing for a sync after the test's database is gone
