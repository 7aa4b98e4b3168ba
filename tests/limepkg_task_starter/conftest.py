from __future__ import annotations

import json
import uuid

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from lime_task import headers
from lime_task.status import Origin
from limepkg_task_starter.models import Application, ScheduleDeclaration, TaskRun
from limepkg_task_starter.services.worker import StartedRun

DUMMY = "solution_demo.tasks.my_tasks.dummy_task"
EXAMPLE = "solution_demo.tasks.my_tasks.example_task"
PERMISSIONS = {
    "view": "view_taskrun",
    "start": "start_task",
    "impersonate": "start_task_as_impersonation_user",
    "traceback": "view_traceback",
    "cancel": "cancel_run",
    "pause_queue": "pause_queue",
    "pause": "pause_schedule",
}


def make_user(
    username: str,
    *,
    staff: bool = True,
    perms: tuple[str, ...] = (),
    applications: tuple[Application, ...] = (),
    superuser: bool = False,
) -> User:
    user = User.objects.create_user(username, password=None, is_staff=staff, is_superuser=superuser)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="limepkg_task_starter",
            codename__in=[PERMISSIONS[p] for p in perms],
        )
    )
    for application in applications:
        application.members.add(user)
    return user


@pytest.fixture
def pages_application(db: None) -> Application:
    User.objects.create_user("integration-user")
    return Application.objects.create(
        name="demo",
        config={
            "limepkg_task_starter": {
                "task_history": 20,
                "impersonate_user": "integration-user",
                "tasks": [DUMMY, EXAMPLE],
            }
        },
    )


@pytest.fixture
def other_pages_application(db: None) -> Application:
    return Application.objects.create(
        name="other", config={"limepkg_task_starter": {"tasks": [DUMMY]}}
    )


@pytest.fixture
def a_run(pages_application: Application) -> TaskRun:
    return TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=pages_application,
        task_name=DUMMY,
        arguments={"number": 2, "numberx": 3},
        kwargs={"number": 2, "numberx": 3},
        in_history=True,
        status="FAILURE",
        error_type="builtins.KeyError",
        traceback="Traceback (most recent call last): secret frame",
        origin=Origin.PAGE,
        created_at=timezone.now(),
    )


@pytest.fixture
def a_schedule(pages_application: Application) -> ScheduleDeclaration:
    """The dummy task scheduled in code for ``demo``, running as the impersonation user."""
    periodic = PeriodicTask.objects.create(
        name=f"demo: {DUMMY}",
        task=DUMMY,
        crontab=CrontabSchedule.objects.create(minute="0", hour="7"),
        args=json.dumps([4, 5]),
        headers=json.dumps(
            {
                headers.APPLICATION: "demo",
                headers.USER: "integration-user",
                headers.LANGUAGE: "sv",
            }
        ),
    )
    return ScheduleDeclaration.objects.create(
        application=pages_application,
        key=DUMMY,
        task_name=DUMMY,
        package="solution_demo",
        periodic_task=periodic,
    )


def started_on(run: TaskRun, worker: str) -> StartedRun:
    """What ``worker`` reports when it starts ``run`` (services.worker.run_mark_started)."""
    return StartedRun(
        task_id=run.id,
        task_name=run.task_name,
        application_name=run.application_id,
        run_as="",
        language="",
        args=[],
        kwargs={},
        worker=worker,
        queue=run.queue,
        scheduled=False,
    )


@pytest.fixture
def impersonator(pages_application: Application) -> Client:
    """A member of ``demo`` who may start tasks, also as its impersonation user."""
    client = Client()
    client.force_login(
        make_user("imp", perms=("view", "start", "impersonate"), applications=(pages_application,))
    )
    return client
