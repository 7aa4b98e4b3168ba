"""The stock admin of the app's models and of the schedules, under the Task starter's rules."""

from __future__ import annotations

import datetime
import hashlib
import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from lime_task import headers
from limepkg_task_starter.models import (
    ApiToken,
    Application,
    AuditAction,
    AuditEntry,
    ScheduleDeclaration,
    TaskRun,
)
from tests.limepkg_task_starter.conftest import DUMMY, make_user

ADMIN = "/admin"
# Every model permission an administrator of one application might be given.
ALL_VIEW_AND_CHANGE = [
    ("limepkg_task_starter", "view_taskrun"),
    ("limepkg_task_starter", "view_auditentry"),
    ("limepkg_task_starter", "view_application"),
    ("limepkg_task_starter", "change_application"),
    ("limepkg_task_starter", "add_apitoken"),
    ("limepkg_task_starter", "view_apitoken"),
    ("django_celery_beat", "view_periodictask"),
    ("django_celery_beat", "change_periodictask"),
    ("django_celery_beat", "add_periodictask"),
    ("django_celery_beat", "change_crontabschedule"),
    ("django_celery_beat", "add_crontabschedule"),
]


def administrator(name: str, application: Application, *extra: str) -> Client:
    user = make_user(name, perms=extra, applications=(application,))
    user.user_permissions.add(
        *[
            Permission.objects.get(content_type__app_label=label, codename=codename)
            for label, codename in ALL_VIEW_AND_CHANGE
        ]
    )
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def an_audit_entry(pages_application: Application, a_run: TaskRun) -> AuditEntry:
    return AuditEntry.objects.create(
        actor_username="someone",
        action=AuditAction.START,
        application="demo",
        task_name=DUMMY,
        arguments={"number": 2},
        run=a_run,
    )


def pages(a_run: TaskRun, entry: AuditEntry, schedule: ScheduleDeclaration) -> dict[str, Any]:
    app = f"{ADMIN}/limepkg_task_starter"
    periodic = schedule.periodic_task
    demo = schedule.application
    return {
        "runs": (f"{app}/taskrun/", a_run.id),
        "run": (f"{app}/taskrun/{a_run.id}/change/", "Who and where"),
        "audit": (f"{app}/auditentry/", f"/auditentry/{entry.pk}/change/"),
        "applications": (f"{app}/application/", f"/application/{demo.pk}/change/"),
        "application": (f"{app}/application/{demo.pk}/change/", "integration-user"),
        "schedules": (f"{ADMIN}/django_celery_beat/periodictask/", periodic.name),
        "schedule": (f"{ADMIN}/django_celery_beat/periodictask/{periodic.pk}/change/", DUMMY),
    }


# (admin page, member of the application or of another): does the page show the row?
MATRIX = [
    (admin_page, role)
    for admin_page in [
        "runs",
        "run",
        "audit",
        "applications",
        "application",
        "schedules",
        "schedule",
    ]
    for role in ["member", "other_member"]
]


@pytest.mark.parametrize(("admin_page", "role"), MATRIX)
def test_admin_pages_follow_application_membership(
    pages_application: Application,
    other_pages_application: Application,
    a_run: TaskRun,
    an_audit_entry: AuditEntry,
    a_schedule: ScheduleDeclaration,
    admin_page: str,
    role: str,
) -> None:
    application = pages_application if role == "member" else other_pages_application
    client = administrator(role, application)
    url, marker = pages(a_run, an_audit_entry, a_schedule)[admin_page]
    response = client.get(url, follow=True)
    assert response.status_code == 200
    assert (marker in response.content.decode()) is (role == "member")


@pytest.mark.parametrize(("traceback_permission", "shown"), [((), False), (("traceback",), True)])
def test_the_run_admin_shows_tracebacks_only_with_their_permission(
    pages_application: Application, a_run: TaskRun, traceback_permission, shown: bool
) -> None:
    client = administrator("viewer", pages_application, *traceback_permission)
    page = client.get(f"{ADMIN}/limepkg_task_starter/taskrun/{a_run.id}/change/")
    assert page.status_code == 200
    assert ("secret frame" in page.content.decode()) is shown


def test_a_staff_member_makes_api_tokens_only_for_themselves(
    pages_application: Application, admin_user: User
) -> None:
    client = administrator("tokens", pages_application)
    response = client.post(
        f"{ADMIN}/limepkg_task_starter/apitoken/add/", {"name": "ci", "user": admin_user.pk}
    )
    assert response.status_code == 200
    token = ApiToken.objects.get()
    assert token.user.username == "tokens"
    assert (
        client.get(f"{ADMIN}/limepkg_task_starter/apitoken/add/")
        .content.decode()
        .count('name="user"')
        == 0
    )


def test_a_staff_member_sees_only_their_own_tokens(
    pages_application: Application, admin_user: User
) -> None:
    ApiToken.objects.create(user=admin_user, name="the superuser's", key_hash="x" * 64)
    client = administrator("tokens", pages_application)
    assert (
        "the superuser&#x27;s"
        not in client.get(f"{ADMIN}/limepkg_task_starter/apitoken/").content.decode()
    )


def test_only_a_superuser_adds_a_periodic_task(pages_application: Application) -> None:
    client = administrator("scheduler", pages_application)
    assert client.get(f"{ADMIN}/django_celery_beat/periodictask/add/").status_code == 403


def test_code_owned_fields_of_a_declared_schedule_are_read_only(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    client = administrator("scheduler", pages_application)
    periodic = a_schedule.periodic_task
    page = client.get(f"{ADMIN}/django_celery_beat/periodictask/{periodic.pk}/change/")
    html = page.content.decode()
    assert 'name="headers"' not in html and 'name="args"' not in html
    assert 'name="enabled"' in html and 'name="crontab"' in html
    task_page = f"/admin/task-starter/demo/tasks/{periodic.task}/"
    assert f'<a href="{task_page}">Open the task page</a>' in html


def test_a_shared_crontab_is_changed_only_by_a_superuser(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    client = administrator("scheduler", pages_application)
    crontab = a_schedule.periodic_task.crontab
    response = client.post(
        f"{ADMIN}/django_celery_beat/crontabschedule/{crontab.pk}/change/",
        {"minute": "5", "hour": "*", "day_of_week": "*", "day_of_month": "*"},
    )
    assert response.status_code == 403 or b"readonly" in response.content
    crontab.refresh_from_db()
    assert crontab.minute == "0"


def run_action(client: Client, action: str, periodic: PeriodicTask) -> Any:
    return client.post(
        f"{ADMIN}/django_celery_beat/periodictask/",
        {"action": action, "_selected_action": [periodic.pk]},
        follow=True,
    )


def test_the_admin_run_action_goes_through_the_start_policy(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    client = administrator("runner", pages_application, "start")
    response = run_action(client, "run_tasks", a_schedule.periodic_task)
    assert "You may not start tasks as integration-user." in response.content.decode()
    assert not TaskRun.objects.exists()

    client = administrator("impersonator", pages_application, "start", "impersonate")
    run_action(client, "run_tasks", a_schedule.periodic_task)
    run = TaskRun.objects.get()
    assert (run.origin, run.run_as, run.kwargs) == (
        "schedule",
        "integration-user",
        {"number": 4, "numberx": 5},
    )
    assert AuditEntry.objects.get(run=run).actor_username == "impersonator"


def test_the_admin_run_action_runs_a_schedule_added_in_the_admin_through_the_same_policy(
    pages_application: Application,
) -> None:
    added = PeriodicTask.objects.create(
        name="demo: by hand",
        task=DUMMY,
        args="[6]",
        headers=json.dumps({headers.APPLICATION: "demo", headers.USER: "integration-user"}),
        crontab=CrontabSchedule.objects.create(minute="*/5"),
    )
    stray = PeriodicTask.objects.create(
        name="no application", task=DUMMY, crontab=CrontabSchedule.objects.create(minute="1")
    )
    root = User.objects.create_superuser("root")
    client = Client()
    client.force_login(root)

    run_action(client, "run_tasks", added)
    response = run_action(client, "run_tasks", stray)

    run = TaskRun.objects.get()
    assert (run.origin, run.run_as, run.kwargs) == ("schedule", "integration-user", {"number": 6})
    assert AuditEntry.objects.get(run=run).detail == "Run now: demo: by hand"
    said = [str(message) for message in response.context["messages"]]
    assert said == [
        "no application names none of your applications (declared in code, or lime_application "
        "in its headers): it is not run from here."
    ]


def test_disabling_from_the_admin_is_seen_by_the_scheduler_and_audited(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    periodic = a_schedule.periodic_task
    PeriodicTask.objects.filter(pk=periodic.pk).update(
        date_changed=timezone.now() - datetime.timedelta(days=1)
    )
    before = PeriodicTask.objects.get(pk=periodic.pk).date_changed
    client = administrator("scheduler", pages_application)
    run_action(client, "disable_tasks", periodic)
    periodic.refresh_from_db()
    assert periodic.enabled is False
    assert periodic.date_changed > before
    entry = AuditEntry.objects.get(action=AuditAction.SCHEDULE_CHANGE)
    assert (entry.actor_username, entry.application) == ("scheduler", "demo")
    assert "enabled" in entry.detail


def test_the_run_and_audit_lists_link_to_view_info(
    pages_application: Application, a_run: TaskRun, an_audit_entry: AuditEntry
) -> None:
    client = administrator("viewer", pages_application)
    link = f'<a href="/admin/task-starter/runs/{a_run.id}/">View info</a>'
    assert link in client.get(f"{ADMIN}/limepkg_task_starter/taskrun/").content.decode()
    assert link in client.get(f"{ADMIN}/limepkg_task_starter/auditentry/").content.decode()


def test_a_new_token_is_shown_once_on_its_page_and_never_in_a_cookie(
    pages_application: Application,
) -> None:
    client = administrator("tokens", pages_application)
    response = client.post(f"{ADMIN}/limepkg_task_starter/apitoken/add/", {"name": "ci"})

    key = response.context["key"]
    assert ApiToken.objects.get().key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert all(key not in morsel.value for morsel in response.cookies.values())
    assert key not in client.get(f"{ADMIN}/limepkg_task_starter/apitoken/").content.decode()
    api = Client(headers={"Authorization": f"Bearer {key}"})
    assert api.get("/api/v1/applications/demo/runs/none").status_code != 401


def change_form_data(client: Client, url: str) -> dict[str, Any]:
    """What the browser would post back for the admin change form at ``url``, unchanged."""
    form = client.get(url).context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else field.prepare_value(value)
    return data


def test_a_declared_schedule_saves_from_beats_form_with_its_code_owned_fields_kept(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    client = administrator("scheduler", pages_application)
    periodic = a_schedule.periodic_task
    url = f"{ADMIN}/django_celery_beat/periodictask/{periodic.pk}/change/"
    nightly = CrontabSchedule.objects.create(minute="0", hour="4")
    data = change_form_data(client, url) | {"crontab": nightly.pk, "task": "os.system"}
    data.pop("enabled")

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    periodic.refresh_from_db()
    assert (periodic.crontab_id, periodic.enabled) == (nightly.pk, False)
    assert (periodic.task, periodic.args) == (DUMMY, "[4, 5]")  # what the code declared


def test_an_undeclared_schedule_saves_from_beats_form(db: None) -> None:
    client = Client()
    client.force_login(make_user("root", superuser=True))
    periodic = PeriodicTask.objects.create(
        name="cleanup",
        task="celery.backend_cleanup",
        crontab=CrontabSchedule.objects.create(minute="0", hour="7"),
    )
    url = f"{ADMIN}/django_celery_beat/periodictask/{periodic.pk}/change/"
    nightly = CrontabSchedule.objects.create(minute="0", hour="4")
    data = change_form_data(client, url) | {"crontab": nightly.pk, "args": "[1]"}

    response = client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    periodic.refresh_from_db()
    assert (periodic.crontab_id, periodic.args, periodic.task) == (
        nightly.pk,
        "[1]",
        "celery.backend_cleanup",
    )


def test_an_application_whose_schedules_are_not_synced_says_why_in_the_admin(
    pages_application: Application, admin_client: Client
) -> None:
    problem = "Schedules of application demo not synced: Periodic task with this Name exists."
    Application.objects.filter(pk=pages_application.pk).update(schedules_problem=problem)

    listing = admin_client.get(f"{ADMIN}/limepkg_task_starter/application/").content.decode()
    page = admin_client.get(
        f"{ADMIN}/limepkg_task_starter/application/{pages_application.pk}/change/"
    ).content.decode()
    assert 'alt="False"' in listing
    assert "Periodic task with this Name exists." in page
