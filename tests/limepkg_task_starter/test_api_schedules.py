"""The schedules API: list an application's schedules, pause and resume one, as the tab does."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from lime_task import headers
from limepkg_task_starter.models import (
    Application,
    AuditEntry,
    ScheduleDeclaration,
    SchedulePause,
)
from limepkg_task_starter.services import schedules as schedule_services
from limepkg_task_starter.services.tokens import api_token_create
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

API = "/api/v1/applications/demo/schedules"


@pytest.fixture
def robot(pages_application: Application) -> Client:
    user = make_user("robot", perms=("view", "pause"), applications=(pages_application,))
    _, key = api_token_create(user=user, name="ci")
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {key}"})


def test_the_list_says_what_the_tab_says(robot: Client, a_schedule: ScheduleDeclaration) -> None:
    PeriodicTask.objects.create(
        name="demo: added",
        task=EXAMPLE,
        crontab=CrontabSchedule.objects.create(minute="30", hour="*/2"),
        headers=json.dumps({headers.APPLICATION: "demo"}),
    )
    response = robot.get(API)
    assert response.status_code == 200
    declared, added = sorted(response.json(), key=lambda row: row["name"], reverse=True)
    assert declared["id"] == a_schedule.periodic_task_id
    assert (declared["declared_in_code"], declared["task"], declared["cron"]) == (
        True,
        DUMMY,
        "0 7 * * *",
    )
    assert (declared["description"], declared["timezone"], declared["enabled"]) == (
        "At 07:00 AM",
        "UTC",
        True,
    )
    assert len(declared["next_runs"]) == 5 and declared["next_runs"][0].endswith("Z")
    assert (declared["paused"], declared["last_run"]) == (None, None)
    assert (added["declared_in_code"], added["task"]) == (False, EXAMPLE)


def test_pause_until_and_resume_round_trip(robot: Client, a_schedule: ScheduleDeclaration) -> None:
    url = f"{API}/{a_schedule.periodic_task_id}"
    paused = robot.post(
        f"{url}/pause", {"until": "2999-01-01T09:00:00+09:00"}, content_type="application/json"
    )
    assert paused.status_code == 200, paused.content
    body = paused.json()
    assert body["paused"]["by"] == "robot"
    assert body["paused"]["until"] == "2999-01-01T00:00:00Z"
    assert SchedulePause.objects.get().until.isoformat() == "2999-01-01T00:00:00+00:00"

    resumed = robot.post(f"{url}/resume")
    assert resumed.status_code == 200
    assert resumed.json()["paused"] is None
    assert not SchedulePause.objects.exists()
    assert AuditEntry.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        ({"until": "2001-01-01T00:00:00Z"}, 400, schedule_services.UNTIL_NOT_LATER),
        ({"until": "9999-12-31T23:00:00-05:00"}, 400, schedule_services.UNTIL_TOO_LATE),
        ({"until": "2999-01-01T00:00:00"}, 422, "until"),  # no offset: whose 00:00?
        ({"until": "soon"}, 422, "until"),
        ({"forever": True}, 422, "forever"),
    ],
)
def test_a_bad_pause_is_refused_and_nothing_is_paused(
    robot: Client, a_schedule: ScheduleDeclaration, body: dict, status: int, said: str
) -> None:
    response = robot.post(
        f"{API}/{a_schedule.periodic_task_id}/pause", body, content_type="application/json"
    )
    assert response.status_code == status
    assert said in json.dumps(response.json(), ensure_ascii=False)
    assert not SchedulePause.objects.exists()


def test_another_applications_schedule_is_missing(
    robot: Client, other_pages_application: Application
) -> None:
    theirs = PeriodicTask.objects.create(
        name="other: theirs",
        task=DUMMY,
        crontab=CrontabSchedule.objects.create(minute="1"),
        headers=json.dumps({headers.APPLICATION: "other"}),
    )
    assert (
        robot.post(f"{API}/{theirs.id}/pause", {}, content_type="application/json").status_code
        == 404
    )
    assert robot.get("/api/v1/applications/other/schedules").status_code == 404
    assert not SchedulePause.objects.exists()


def test_the_openapi_description_has_the_schedule_endpoints(client: Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/applications/{app_name}/schedules" in paths
    pause = paths["/api/v1/applications/{app_name}/schedules/{schedule_id}/pause"]["post"]
    assert pause["summary"] == "Pause a schedule"
    assert {"200", "400", "403", "404"} <= set(pause["responses"])
