"""Schedules declared in code, synced into django-celery-beat, shown with their next runs."""

from __future__ import annotations

import datetime
import json
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from lime_task.config import TasksConfig
from lime_task.schedule import CronTab, ScheduledTask, SessionTask, TaskSession
from limepkg_task_starter.models import Application, ScheduleDeclaration
from limepkg_task_starter.schedule_summary import next_runs
from limepkg_task_starter.schedule_sync import schedule_sync
from limepkg_task_starter.scheduler import CachedEntry
from tests.reference_solution.tasks import my_task_file

pytestmark = pytest.mark.django_db
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def reference_declaration() -> list[ScheduledTask]:
    # The reference's example, with its task swapped for one of ours.
    return [
        ScheduledTask(
            task=my_task_file.weekly_report,
            session=SessionTask(user_name="integration-user", language="sv"),
            args=["arg1", {"test": "test"}, True, 1337, None],
            schedule=CronTab(hour=7, minute=30, day_of_week=1),
        )
    ]


@pytest.fixture
def applications(db: None) -> list[Application]:
    User.objects.create_user("integration-user")
    return [Application.objects.create(name=name, config={}) for name in ("demo", "other")]


def sync(declared: list[ScheduledTask]):
    return schedule_sync(declared=[("tests.reference_solution", s) for s in declared])


def test_session_task_is_task_session() -> None:
    assert SessionTask is TaskSession


def test_crontab_keeps_celerys_semantics() -> None:
    schedule = CronTab(hour=7, minute=30, day_of_week=1)
    assert (schedule.hour, schedule.minute, schedule.day_of_week) == ({7}, {30}, {1})
    assert CronTab(hour=7).minute == set(range(60))  # left out means every value


def test_reference_example_is_written_once_per_application(applications) -> None:
    report = sync(reference_declaration())

    assert (report.created, report.errors) == (2, [])
    periodic = PeriodicTask.objects.get(
        name="demo: tests.reference_solution.tasks.my_task_file.weekly_report"
    )
    assert json.loads(periodic.args) == ["arg1", {"test": "test"}, True, 1337, None]
    assert json.loads(periodic.headers) | {} == {
        "lime_application": "demo",
        "lime_user": "integration-user",
        "lime_language": "sv",
        "lime_queue": "lime_default_task_queue",
    }
    crontab = periodic.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week, str(crontab.timezone)) == (
        "30",
        "7",
        "1",
        "UTC",
    )


def test_sync_is_idempotent(applications) -> None:
    sync(reference_declaration())
    before = list(PeriodicTask.objects.values_list("id", "date_changed"))
    report = sync(reference_declaration())
    assert (report.created, report.updated, report.removed) == (0, 0, 0)
    assert list(PeriodicTask.objects.values_list("id", "date_changed")) == before


def edit_in_admin(name: str, **crontab: str) -> None:
    periodic = PeriodicTask.objects.get(name=name)
    fields = {
        f: getattr(periodic.crontab, f)
        for f in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year", "timezone")
    }
    periodic.crontab = CrontabSchedule.objects.create(**(fields | crontab))
    periodic.enabled = False
    periodic.save()


def test_an_administrators_change_survives_later_syncs(applications) -> None:
    sync(reference_declaration())
    name = "demo: tests.reference_solution.tasks.my_task_file.weekly_report"
    edit_in_admin(name, hour="9", timezone="Europe/Stockholm")

    changed_code = reference_declaration()[0]
    sync(
        [
            ScheduledTask(
                task=changed_code.task,
                session=changed_code.session,
                args=changed_code.args,
                schedule=CronTab(hour=6, minute=0),
            )
        ]
    )

    periodic = PeriodicTask.objects.get(name=name)
    assert (periodic.crontab.hour, str(periodic.crontab.timezone), periodic.enabled) == (
        "9",
        "Europe/Stockholm",
        False,
    )
    untouched = PeriodicTask.objects.get(
        name="other: tests.reference_solution.tasks.my_task_file.weekly_report"
    )
    assert (untouched.crontab.hour, untouched.crontab.minute) == ("6", "0")  # code change applies


def test_a_schedule_removed_from_code_is_disabled_and_marked(applications) -> None:
    sync(reference_declaration())
    report = sync([])

    assert report.removed == 2
    assert not PeriodicTask.objects.filter(enabled=True).exists()
    assert PeriodicTask.objects.first().description.startswith("Removed from code on")
    assert ScheduleDeclaration.objects.filter(removed_at__isnull=False).count() == 2
    assert sync(reference_declaration()).updated == 2  # declared again: enabled again
    assert PeriodicTask.objects.filter(enabled=True).count() == 2


def test_an_unknown_session_user_is_a_clear_error(applications) -> None:
    declared = reference_declaration()[0]
    report = sync(
        [
            ScheduledTask(
                task=declared.task, session=TaskSession("ghost"), schedule=declared.schedule
            )
        ]
    )
    assert report.errors == [
        f"Scheduled task {declared.task_name} for application {app} runs as user ghost, "
        "who does not exist: not scheduled."
        for app in ("demo", "other")
    ]
    assert not PeriodicTask.objects.exists()


def test_application_timezone_and_qos_route_are_used(applications, settings) -> None:
    settings.LIME_TASKS = TasksConfig(timezone="Europe/Stockholm")
    sync(
        [
            ScheduledTask(
                task=my_task_file.urgent,
                session=TaskSession("integration-user"),
                schedule=CronTab(hour=2, minute=30),
            )
        ]
    )
    periodic = PeriodicTask.objects.get(
        name="demo: tests.reference_solution.tasks.my_task_file.urgent"
    )
    assert (str(periodic.crontab.timezone), periodic.queue) == (
        "Europe/Stockholm",
        "lime_task_queue_asap",
    )


def test_next_runs_step_over_the_spring_gap() -> None:
    crontab = CrontabSchedule(minute="30", hour="2", timezone="Europe/Stockholm")
    runs = next_runs(crontab, after=datetime.datetime(2027, 3, 26, 12, tzinfo=UTC))
    assert [r.isoformat() for r in runs] == [
        "2027-03-27T02:30:00+01:00",
        "2027-03-28T03:30:00+02:00",  # 02:30 does not exist that night
        "2027-03-29T02:30:00+02:00",
        "2027-03-30T02:30:00+02:00",
        "2027-03-31T02:30:00+02:00",
    ]


def dispatches_over(day_start: datetime.datetime, hours: int = 30) -> list[str]:
    """Drive one scheduler entry through a day with a fake clock, as beat's loop would."""
    crontab = CrontabSchedule.objects.create(minute="30", hour="2", timezone="Europe/Stockholm")
    periodic = PeriodicTask.objects.create(
        name="nightly",
        task="x",
        crontab=crontab,
        last_run_at=day_start - datetime.timedelta(hours=1),
    )
    clock = [day_start]
    entry = CachedEntry(periodic)
    entry.schedule.nowfun = lambda: clock[0].astimezone(STOCKHOLM)
    entry._default_now = lambda: clock[0]
    fired = []
    while clock[0] < day_start + datetime.timedelta(hours=hours):
        due, _next = entry.is_due()
        if due:
            fired.append(clock[0].astimezone(STOCKHOLM).isoformat(timespec="minutes"))
            entry = next(entry)
        clock[0] += datetime.timedelta(seconds=15)
    return fired


def test_a_daily_0230_job_runs_exactly_once_when_clocks_spring_forward() -> None:
    assert dispatches_over(datetime.datetime(2027, 3, 27, 12, tzinfo=UTC)) == [
        "2027-03-28T03:30+02:00"
    ]


def test_a_daily_0230_job_runs_exactly_once_when_clocks_fall_back() -> None:
    assert dispatches_over(datetime.datetime(2027, 10, 30, 12, tzinfo=UTC)) == [
        "2027-10-31T02:30+02:00"
    ]


def test_enable_scheduled_tasks_false_keeps_declared_schedules_from_dispatch(
    applications, settings
) -> None:
    from limepkg_task_starter.scheduler import TaskStarterScheduler
    from taskstarter.celery import app as celery_app

    sync(reference_declaration())
    PeriodicTask.objects.create(
        name="made in the admin",
        task="x",
        crontab=CrontabSchedule.objects.create(minute="0", hour="1"),
    )
    settings.LIME_TASKS = TasksConfig(enable_scheduled_tasks=False)
    scheduler = TaskStarterScheduler(app=celery_app, lazy=True)
    assert [row.name for row in scheduler.enabled_models_qs()] == ["made in the admin"]


def test_the_task_page_shows_schedules_and_runs_one_now(applications, client) -> None:
    from limepkg_task_starter.models import AuditEntry, TaskRun
    from tests.limepkg_task_starter.conftest import make_user

    demo = applications[0]
    demo.config = {"limepkg_task_starter": {"tasks": [reference_declaration()[0].task_name]}}
    demo.save()
    sync(reference_declaration())
    client.force_login(
        make_user("ada", perms=("view", "start", "impersonate"), applications=(demo,))
    )
    page = client.get(f"/admin/task-starter/demo/tasks/{reference_declaration()[0].task_name}/")
    html = page.content.decode()
    assert "At 07:30 AM, only on Monday" in html and "<code>30 7 * * 1</code>" in html
    assert html.count(":30 UTC</div>") == 5  # the next five runs
    declaration = ScheduleDeclaration.objects.get(application=demo)

    client.post(f"/admin/task-starter/schedules/{declaration.id}/run-now/")

    run = TaskRun.objects.get()
    assert (run.origin, run.run_as) == ("schedule", "integration-user")
    named = {
        "title": "arg1",
        "options": {"test": "test"},
        "flag": True,
        "number": 1337,
        "nothing": None,
    }
    assert (run.arguments, run.kwargs) == (named, named)
    assert AuditEntry.objects.get().detail == f"Run now: {declaration.periodic_task.name}"


def test_a_bad_cron_field_is_named_in_the_admin_form(admin_client) -> None:
    response = admin_client.post(
        "/admin/django_celery_beat/crontabschedule/add/",
        {
            "minute": "61",
            "hour": "*",
            "day_of_week": "*",
            "day_of_month": "*",
            "month_of_year": "*",
            "timezone": "UTC",
        },
    )
    assert response.status_code == 200
    assert "minute" in str(response.context["adminform"].form.errors)
    assert not CrontabSchedule.objects.exists()


# --- Schedules follow their application ---------------------------------------------------

WEEKLY = "demo: tests.reference_solution.tasks.my_task_file.weekly_report"


def test_deleting_an_application_deletes_its_declared_periodic_tasks(applications) -> None:
    sync(reference_declaration())
    applications[0].delete()

    assert list(PeriodicTask.objects.values_list("name", flat=True)) == [
        "other: tests.reference_solution.tasks.my_task_file.weekly_report"
    ]


def test_deleting_applications_in_bulk_deletes_their_periodic_tasks(applications) -> None:
    sync(reference_declaration())
    Application.objects.all().delete()

    assert not PeriodicTask.objects.exists()


def test_a_recreated_application_gets_its_schedules_again(applications) -> None:
    sync(reference_declaration())
    applications[0].delete()
    Application.objects.create(name="demo", config={})

    report = sync(reference_declaration())

    assert (report.created, report.errors) == (1, [])
    assert PeriodicTask.objects.get(name=WEEKLY).declaration.application_id == "demo"


def test_an_orphan_of_the_same_name_is_adopted_not_duplicated(applications) -> None:
    """Left by an application deleted before schedules followed it: enabled, firing nowhere."""
    orphan = PeriodicTask.objects.create(
        name=WEEKLY,
        task="tests.reference_solution.tasks.my_task_file.weekly_report",
        crontab=CrontabSchedule.objects.create(minute="0", hour="1"),
        args="[]",
    )

    report = sync(reference_declaration())

    assert (report.created, report.errors) == (2, [])
    orphan.refresh_from_db()
    assert orphan.declaration.application_id == "demo"
    assert json.loads(orphan.args) == ["arg1", {"test": "test"}, True, 1337, None]
    assert (orphan.crontab.minute, orphan.crontab.hour) == ("30", "7")


def test_one_applications_failure_is_reported_and_the_others_are_synced(applications) -> None:
    """A name held by another application's declaration (beat refuses a second row of it)."""
    taken = PeriodicTask.objects.create(
        name=WEEKLY, task="x", crontab=CrontabSchedule.objects.create(minute="0", hour="1")
    )
    ScheduleDeclaration.objects.create(
        application=applications[1], key="taken", task_name="x", package="p", periodic_task=taken
    )

    report = sync(reference_declaration())

    assert report.created == 1
    assert len(report.errors) == 1 and report.errors[0].startswith(
        "Schedules of application demo not synced:"
    )
    assert ScheduleDeclaration.objects.filter(application__name="other").count() == 2
    problems = dict(Application.objects.values_list("name", "schedules_problem"))
    assert problems["demo"] == report.errors[0] and problems["other"] == ""

    taken.delete()  # the administrator frees the name: the next sync clears the problem
    assert sync(reference_declaration()).errors == []
    assert Application.objects.get(name="demo").schedules_problem == ""


def test_a_schedule_declared_again_is_synced_once_and_then_left_alone(applications) -> None:
    sync(reference_declaration())
    assert sync([]).removed == 2

    back = sync(reference_declaration())
    again = sync(reference_declaration())

    assert back.updated == 2
    assert (again.created, again.updated, again.removed) == (0, 0, 0)
    assert not ScheduleDeclaration.objects.filter(removed_at__isnull=False).exists()
