"""The Schedules tab: every schedule of an application with its next and last runs, Upcoming,
and Pause / Resume; the Run now defect on a schedule the application's config disables."""

from __future__ import annotations

import datetime
import json
import uuid
from datetime import UTC

import pytest
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from lime_task import headers
from lime_task.status import Origin
from limepkg_task_starter.models import (
    Application,
    AuditAction,
    AuditEntry,
    ScheduleDeclaration,
    SchedulePause,
    TaskRun,
)
from limepkg_task_starter.schedule_summary import UPCOMING_LIMIT, schedule_row, upcoming
from limepkg_task_starter.selectors import application_schedules
from limepkg_task_starter.services import schedules as schedule_services
from limepkg_task_starter.services import starting
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

TAB = "/admin/task-starter/demo/schedules/"


def admin_added(name: str, app: str = "demo", task: str = EXAMPLE, **schedule) -> PeriodicTask:
    """A periodic task an administrator added, for ``app`` (named in its headers)."""
    if not schedule:
        schedule = {"crontab": CrontabSchedule.objects.create(minute="*/15", hour="*")}
    return PeriodicTask.objects.create(
        name=name,
        task=task,
        args="[]",
        headers=json.dumps({headers.APPLICATION: app, headers.USER: "integration-user"}),
        **schedule,
    )


@pytest.fixture
def pauser(pages_application: Application) -> Client:
    client = Client()
    client.force_login(
        make_user("pat", perms=("view", "start", "pause"), applications=(pages_application,))
    )
    return client


def page(client: Client) -> str:
    response = client.get(TAB)
    assert response.status_code == 200
    return response.content.decode()


# --- What the tab shows -----------------------------------------------------------------------


def test_the_tab_lists_declared_and_admin_added_schedules_of_its_application_only(
    pauser: Client, a_schedule: ScheduleDeclaration, other_pages_application: Application
) -> None:
    admin_added("demo: every quarter hour")
    admin_added("other: not ours", app="other")
    admin_added("demo-ish: typed badly", app="demo-ish")
    PeriodicTask.objects.create(
        name="no headers", task=EXAMPLE, crontab=CrontabSchedule.objects.create(minute="1")
    )

    html = page(pauser)

    assert f"demo: {DUMMY}" in html and "demo: every quarter hour" in html
    assert "not ours" not in html and "typed badly" not in html and "no headers" not in html
    assert 'class="ts-badge ts-badge-code"' in html and 'class="ts-badge ts-badge-admin"' in html
    assert "At 07:00" in html  # cron in words
    assert "Every 15 minutes" in html
    assert '<strong aria-current="page">Schedules</strong>' in html


def test_next_runs_are_sent_in_utc_for_the_viewers_zone(
    pauser: Client, a_schedule: ScheduleDeclaration
) -> None:
    CrontabSchedule.objects.filter(id=a_schedule.periodic_task.crontab_id).update(
        timezone="Europe/Stockholm"
    )
    html = page(pauser)
    now = timezone.now()
    [row] = application_schedules(application=a_schedule.application)
    assert len(row.next_runs) == 5
    first = row.next_runs[0]
    assert first.astimezone(datetime.UTC) > now
    assert (first.hour, first.minute, str(first.tzinfo)) == (7, 0, "Europe/Stockholm")
    # The page's script shows <time> in the viewer's zone; the server sends UTC, labelled.
    assert f'<time datetime="{first.astimezone(UTC).isoformat()}" class="ts-time">' in html
    assert "Europe/Stockholm" in html  # the schedule's own zone
    assert 'class="ts-zone"' in html  # filled in with the viewer's zone by the script


def test_the_last_scheduled_run_is_linked_with_its_outcome(
    pauser: Client, a_schedule: ScheduleDeclaration
) -> None:
    run = TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=a_schedule.application,
        task_name=DUMMY,
        status="FAILURE",
        origin=Origin.SCHEDULE,
        created_at=timezone.now(),
    )
    html = page(pauser)
    assert f'href="/admin/task-starter/runs/{run.id}/"' in html
    assert "ts-status-failure" in html


def test_a_declared_schedule_of_a_task_the_application_does_not_expose_says_so(
    pauser: Client, a_schedule: ScheduleDeclaration, pages_application: Application
) -> None:
    pages_application.config["limepkg_task_starter"]["tasks"] = [EXAMPLE]
    pages_application.save()
    html = page(pauser)
    assert "Not a task this application exposes" in html
    assert "run-now" not in html


# --- Pause and resume ---------------------------------------------------------------------------


def test_pause_is_confirmed_then_stored_audited_and_shown(
    pauser: Client, a_schedule: ScheduleDeclaration
) -> None:
    periodic = a_schedule.periodic_task
    url = f"{TAB}{periodic.id}/pause/"
    confirm = pauser.get(url)
    assert confirm.status_code == 200
    assert "Pause the schedule" in confirm.content.decode()
    assert not SchedulePause.objects.exists()  # asking changes nothing

    response = pauser.post(url, {"until": "", "zone": "Europe/Stockholm"})

    assert response.status_code == 302
    assert response["Location"] == f"{TAB}#schedule-{periodic.id}"
    pause = SchedulePause.objects.get()
    assert (pause.paused_by_username, pause.until) == ("pat", None)
    periodic.refresh_from_db()
    assert periodic.date_changed >= pause.paused_at  # the scheduler reads the change
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_username, entry.task_name) == (
        AuditAction.SCHEDULE_CHANGE,
        "pat",
        DUMMY,
    )
    assert entry.detail == f"Paused demo: {DUMMY}"
    html = page(pauser)
    assert "ts-status-paused" in html and "by pat" in html and "Not until resumed" in html
    assert "Resume…" in html


def test_a_pause_until_is_read_in_the_viewers_zone(
    pauser: Client, a_schedule: ScheduleDeclaration
) -> None:
    url = f"{TAB}{a_schedule.periodic_task_id}/pause/"
    response = pauser.post(url, {"until": "2999-06-01T09:30", "zone": "Asia/Tokyo"})
    assert response.status_code == 302
    until = SchedulePause.objects.get().until
    assert until == datetime.datetime(2999, 6, 1, 0, 30, tzinfo=UTC)
    [row] = application_schedules(application=a_schedule.application)
    assert row.pause is not None
    assert row.next_runs[0] > until  # its runs start after the pause


@pytest.mark.parametrize(
    ("until", "zone", "said"),
    [
        ("2001-01-01T00:00", "UTC", schedule_services.UNTIL_NOT_LATER),
        ("tomorrow", "UTC", "Type a date and time"),
        ("2999-01-01T00:00", "Mars/Olympus", "Unknown time zone"),
        ("9999-12-31T23:59", "Pacific/Pago_Pago", "Type a date and time"),  # past year 9999 UTC
    ],
)
def test_a_bad_until_is_said_at_its_field_and_nothing_is_paused(
    pauser: Client, a_schedule: ScheduleDeclaration, until: str, zone: str, said: str
) -> None:
    response = pauser.post(
        f"{TAB}{a_schedule.periodic_task_id}/pause/", {"until": until, "zone": zone}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert said in html
    assert 'aria-invalid="true"' in html and f'value="{until}"' in html
    assert not SchedulePause.objects.exists()
    assert not AuditEntry.objects.exists()


def test_resume_ends_the_pause_and_the_missed_ticks_are_not_run(
    pauser: Client, a_schedule: ScheduleDeclaration
) -> None:
    periodic = a_schedule.periodic_task
    PeriodicTask.objects.filter(id=periodic.id).update(
        last_run_at=timezone.now() - datetime.timedelta(days=3)
    )
    pauser.post(f"{TAB}{periodic.id}/pause/")

    response = pauser.post(f"{TAB}{periodic.id}/resume/")

    assert response.status_code == 302
    assert not SchedulePause.objects.exists()
    periodic.refresh_from_db()
    # Counted from now, as beat counts a schedule enabled again: the missed ticks do not fire.
    assert periodic.last_run_at is None
    assert timezone.now() - periodic.date_changed < datetime.timedelta(seconds=5)
    details = list(AuditEntry.objects.order_by("created_at").values_list("detail", flat=True))
    assert details[-1].startswith(f"Resumed demo: {DUMMY}")
    assert "the ticks missed while paused are not run" in page(pauser)


def test_resuming_a_schedule_that_is_not_paused_changes_nothing(
    pauser: Client, a_schedule: ScheduleDeclaration
) -> None:
    response = pauser.post(f"{TAB}{a_schedule.periodic_task_id}/resume/", follow=True)
    assert "was not paused" in response.content.decode()
    assert not AuditEntry.objects.exists()


def test_a_pause_until_ends_by_itself(a_schedule: ScheduleDeclaration) -> None:
    SchedulePause.objects.create(
        periodic_task=a_schedule.periodic_task,
        paused_at=timezone.now() - datetime.timedelta(hours=2),
        paused_by_username="pat",
        until=timezone.now() - datetime.timedelta(minutes=1),
    )
    [row] = application_schedules(application=a_schedule.application)
    assert row.pause is None
    assert row.next_runs


def test_a_schedule_of_another_application_cannot_be_paused_from_this_one(
    pauser: Client, other_pages_application: Application
) -> None:
    theirs = admin_added("other: theirs", app="other")
    assert pauser.post(f"{TAB}{theirs.id}/pause/").status_code == 404
    assert pauser.post(f"/admin/task-starter/other/schedules/{theirs.id}/pause/").status_code == 404
    assert not SchedulePause.objects.exists()


# --- Upcoming ---------------------------------------------------------------------------------


def test_upcoming_is_in_time_order_bounded_and_leaves_out_paused_schedules(
    pages_application: Application,
) -> None:
    minutely = admin_added("demo: every minute", crontab=CrontabSchedule.objects.create())
    hourly = admin_added("demo: hourly", crontab=CrontabSchedule.objects.create(minute="5"))
    every_ten = admin_added(
        "demo: every ten minutes",
        interval=IntervalSchedule.objects.create(every=10, period="minutes"),
    )
    paused = admin_added("demo: paused", crontab=CrontabSchedule.objects.create(minute="7"))
    SchedulePause.objects.create(
        periodic_task=paused, paused_at=timezone.now(), paused_by_username="pat"
    )
    now = timezone.now()
    rows = [
        schedule_row(p, application=pages_application, last_run=None, now=now)
        for p in (minutely, hourly, every_ten, paused)
    ]

    due = upcoming(rows, now=now)

    assert len(due) == UPCOMING_LIMIT
    times = [when for when, _ in due]
    assert times == sorted(times)
    assert all(now < when <= now + datetime.timedelta(hours=24) for when in times)
    assert "demo: paused" not in {row.periodic.name for _, row in due}
    wide = upcoming(rows, now=now, limit=10_000)
    names = {row.periodic.name for _, row in wide}
    assert names == {"demo: every minute", "demo: hourly", "demo: every ten minutes"}
    assert sum(row.periodic.name == "demo: hourly" for _, row in wide) == 24


def test_the_tab_shows_upcoming_runs(pauser: Client, a_schedule: ScheduleDeclaration) -> None:
    html = page(pauser)
    assert 'id="upcoming"' in html
    assert html.count(f'<a href="#schedule-{a_schedule.periodic_task_id}">') == 1  # 07:00 daily


# --- Run now on a schedule the application's configuration disables -----------------------


def test_run_now_on_a_schedule_disabled_in_the_config_is_refused_and_records_nothing(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    pages_application.config["scheduled_tasks"] = {DUMMY: {"enabled": False}}
    pages_application.save()
    client = Client()
    client.force_login(
        make_user("imp", perms=("view", "start", "impersonate"), applications=(pages_application,))
    )

    url = f"/admin/task-starter/schedules/{a_schedule.id}/run-now/"
    asked = client.get(url)  # not even offered for confirmation
    assert asked.status_code == 409
    assert "Run now does not start it" in asked.content.decode()

    response = client.post(url)

    assert response.status_code == 409
    assert "disabled in application demo" in response.content.decode()
    assert not TaskRun.objects.exists()
    assert not AuditEntry.objects.exists()
    with pytest.raises(starting.ScheduleDisabledError):
        starting.schedule_run_now(
            actor=make_user("x", perms=("start",)),
            application=a_schedule.application,
            periodic=a_schedule.periodic_task,
        )


def test_the_tab_offers_no_run_now_for_a_schedule_disabled_in_the_config(
    pauser: Client, pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    assert "Run now…" in page(pauser)
    pages_application.config["scheduled_tasks"] = {DUMMY: {"enabled": False}}
    pages_application.save()
    html = page(pauser)
    assert "Run now…" not in html
    assert "Disabled in the application's configuration" in html


# --- Run now on a schedule added in the admin ---------------------------------------------------


def run_now_url(periodic: PeriodicTask, app: str = "demo") -> str:
    return f"/admin/task-starter/{app}/schedules/{periodic.pk}/run-now/"


def test_run_now_on_an_admin_added_schedule_is_confirmed_then_started_with_its_arguments(
    impersonator: Client,
) -> None:
    periodic = admin_added("demo: dummy by hand", task=DUMMY)
    PeriodicTask.objects.filter(pk=periodic.pk).update(args="[3]", kwargs='{"numberx": 7}')
    assert f'href="{run_now_url(periodic)}?next=' in page(impersonator)

    asked = impersonator.get(run_now_url(periodic))
    assert asked.status_code == 200
    assert "Run now?" in asked.content.decode() and "demo: dummy by hand" in asked.content.decode()
    assert not TaskRun.objects.exists()

    impersonator.post(run_now_url(periodic))

    run = TaskRun.objects.get()
    assert (run.task_name, run.origin, run.run_as) == (DUMMY, Origin.SCHEDULE, "integration-user")
    assert run.kwargs == {"number": 3, "numberx": 7}
    entry = AuditEntry.objects.get(run=run)
    assert (entry.actor_username, entry.detail) == ("imp", "Run now: demo: dummy by hand")


def test_run_now_on_an_admin_added_schedule_goes_through_the_start_policy(
    pauser: Client,
) -> None:
    periodic = admin_added("demo: dummy by hand", task=DUMMY)  # runs as the impersonation user

    response = pauser.post(run_now_url(periodic))  # pat may start, not as that user

    assert response.status_code == 403
    assert "You may not start tasks as integration-user." in response.content.decode()
    assert not TaskRun.objects.exists() and not AuditEntry.objects.exists()


def test_run_now_on_a_schedule_whose_arguments_cannot_be_read_says_so_before_confirming(
    impersonator: Client,
) -> None:
    periodic = admin_added("demo: typed badly", task=DUMMY)
    PeriodicTask.objects.filter(pk=periodic.pk).update(args="[3,")

    asked = impersonator.get(run_now_url(periodic))

    assert asked.status_code == 400
    assert "arguments cannot be read (Expecting value" in asked.content.decode()
    assert impersonator.post(run_now_url(periodic)).status_code == 400
    assert not TaskRun.objects.exists()


def test_run_now_reaches_only_the_applications_own_schedules(
    impersonator: Client, other_pages_application: Application
) -> None:
    theirs = admin_added("other: theirs", app="other", task=DUMMY)

    assert impersonator.get(run_now_url(theirs)).status_code == 404
    assert impersonator.post(run_now_url(theirs)).status_code == 404
    assert impersonator.post(run_now_url(theirs, app="other")).status_code == 404
    assert not TaskRun.objects.exists()
