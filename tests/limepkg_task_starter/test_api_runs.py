"""The runs API: the runs page's filters with a stable cursor, cancel, retry by id or by filter,
with the pages' permissions and isolation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from lime_task.status import Origin
from limepkg_task_starter.models import Application, AuditEntry, BulkAction, TaskRun
from limepkg_task_starter.services import bulk
from limepkg_task_starter.services.tokens import api_token_create
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

API = "/api/v1/applications/demo"
NOW = timezone.now()


def add_run(application: Application, *, seconds_ago: float = 0, **values: Any) -> TaskRun:
    defaults: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "application": application,
        "task_name": DUMMY,
        "status": "FAILURE",
        "arguments": {"number": 1, "numberx": 2},
        "run_as": "robot",
        "origin": Origin.PAGE,
        "created_at": NOW - timedelta(seconds=seconds_ago),
    }
    return TaskRun.objects.create(**(defaults | values))


def api_client(application: Application, *perms: str, username: str = "robot") -> Client:
    user = make_user(username, perms=perms, applications=(application,))
    _, key = api_token_create(user=user, name="test")
    return Client(headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def robot(pages_application: Application) -> Client:
    return api_client(pages_application, "view", "start", "cancel")


def test_lists_with_the_pages_filters(
    robot: Client, pages_application: Application, other_pages_application: Application
) -> None:
    failed = add_run(pages_application, seconds_ago=1, error_message="KeyError: 'customer'")
    add_run(pages_application, status="SUCCESS")
    add_run(pages_application, task_name=EXAMPLE)
    add_run(other_pages_application)

    body = robot.get(f"{API}/runs", {"status": "FAILURE", "task": DUMMY, "q": "customer"}).json()
    assert [item["id"] for item in body["items"]] == [failed.id]
    assert body["items"][0]["error_message"] == "KeyError: 'customer'"
    assert body["next_cursor"] is None
    assert len(robot.get(f"{API}/runs").json()["items"]) == 3


def test_the_cursor_is_stable_across_ties_and_new_runs(
    robot: Client, pages_application: Application
) -> None:
    # Seven runs sent at the same moment and three before: ties are ordered by id.
    same = [add_run(pages_application) for _ in range(7)]
    older = [add_run(pages_application, seconds_ago=n + 1) for n in range(3)]
    expected = [run.id for run in sorted(same, key=lambda r: r.id, reverse=True)]
    expected += [run.id for run in older]

    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = robot.get(f"{API}/runs", query).json()
        seen += [item["id"] for item in page["items"]]
        add_run(pages_application, seconds_ago=-60)  # a newer run arrives between pages
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"cursor": "not-a-cursor"}, "Not a cursor"),
        ({"task": "no.such.task"}, "task:"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until:"),
        ({"since": "9999-12-31T23:59:59-23:59"}, "since: Not a time the history can hold"),
    ],
)
def test_a_filter_or_cursor_that_does_not_fit_is_400(
    robot: Client, pages_application: Application, query: dict[str, str], says: str
) -> None:
    response = robot.get(f"{API}/runs", query)
    assert response.status_code == 400
    assert says in response.json()["detail"]


def test_an_offset_the_database_cannot_hold_is_read_in_utc(
    robot: Client, pages_application: Application
) -> None:
    add_run(pages_application)
    response = robot.get(f"{API}/runs", {"until": "3744-06-05T07:43:37-17:55"})
    assert response.status_code == 200
    assert len(response.json()["items"]) == 1
    page = Client()
    page.force_login(make_user("viewer", perms=("view",), applications=(pages_application,)))
    assert page.get("/admin/task-starter/demo/runs/", {"until": "3744-06-05T07:43-17:55"}).context[
        "filters"
    ].until.utcoffset() == timedelta(0)


def test_a_limit_out_of_range_is_422(robot: Client, pages_application: Application) -> None:
    assert robot.get(f"{API}/runs", {"limit": 0}).status_code == 422
    assert robot.get(f"{API}/runs", {"limit": 201}).status_code == 422


def test_cancel_a_waiting_run(robot: Client, pages_application: Application) -> None:
    run = add_run(pages_application, status="PENDING")
    response = robot.post(f"{API}/runs/{run.id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "REVOKED"
    assert AuditEntry.objects.get(action="cancel").run_id == run.id
    again = robot.post(f"{API}/runs/{run.id}/cancel")
    assert again.status_code == 409


def test_cancel_needs_the_permission_and_the_application(
    pages_application: Application, other_pages_application: Application
) -> None:
    run = add_run(pages_application, status="PENDING")
    viewer = api_client(pages_application, "view")
    assert viewer.post(f"{API}/runs/{run.id}/cancel").status_code == 403
    foreign = add_run(other_pages_application, status="PENDING")
    robot = api_client(pages_application, "view", "cancel", username="canceller")
    assert robot.post(f"{API}/runs/{foreign.id}/cancel").status_code == 404
    assert robot.post(f"/api/v1/applications/other/runs/{foreign.id}/cancel").status_code == 404
    assert TaskRun.objects.get(id=foreign.id).status == "PENDING"


def test_retry_by_ids_starts_each_failed_run_once(
    robot: Client, pages_application: Application, other_pages_application: Application
) -> None:
    failed = add_run(pages_application)
    succeeded = add_run(pages_application, status="SUCCESS")
    foreign = add_run(other_pages_application)
    ids = [failed.id, succeeded.id, foreign.id, failed.id]
    response = robot.post(f"{API}/retries", {"ids": ids}, content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    new = TaskRun.objects.get(rerun_of=failed)
    assert body["started"] == [{"id": new.id, "rerun_of": failed.id, "status": "PENDING"}]
    assert body["refused"] == [
        {"id": succeeded.id, "reason": "only failed runs are retried, and it is Success."},
        {"id": foreign.id, "reason": "No such run"},
    ]
    again = robot.post(f"{API}/retries", {"ids": [failed.id]}, content_type="application/json")
    assert again.json()["refused"] == [
        {"id": failed.id, "reason": f"it was retried already, as {new.id}."}
    ]


def test_retry_by_filter_is_a_bulk_action(robot: Client, pages_application: Application) -> None:
    runs = [add_run(pages_application, seconds_ago=n) for n in range(3)]
    add_run(pages_application, task_name=EXAMPLE)
    response = robot.post(
        f"{API}/retries", {"filter": {"task": DUMMY}}, content_type="application/json"
    )
    assert response.status_code == 202
    body = response.json()
    assert (body["kind"], body["state"], body["total"], body["filter"]) == (
        "retry",
        "running",
        3,
        "Task: dummy_task",
    )
    action = BulkAction.objects.get(id=body["id"])
    bulk.bulk_action_process(action_id=action.id, lease=action.lease)
    progress = robot.get(f"{API}/bulk-actions/{action.id}").json()
    assert (progress["state"], progress["done"], progress["refused"]) == ("done", 3, 0)
    assert TaskRun.objects.filter(rerun_of__in=runs).count() == 3


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": ["a"], "filter": {}}, {"ids": []}, {"filter": {"nope": 1}}, [1]],
)
def test_retry_takes_ids_or_a_filter(
    robot: Client, pages_application: Application, body: Any
) -> None:
    response = robot.post(f"{API}/retries", body, content_type="application/json")
    assert response.status_code == 422


def test_retry_needs_the_start_permission(pages_application: Application) -> None:
    run = add_run(pages_application)
    viewer = api_client(pages_application, "view", "cancel")
    response = viewer.post(f"{API}/retries", {"ids": [run.id]}, content_type="application/json")
    assert response.status_code == 403
    assert not TaskRun.objects.filter(rerun_of=run).exists()


def test_a_filter_matching_nothing_is_400(robot: Client, pages_application: Application) -> None:
    response = robot.post(f"{API}/retries", {"filter": {}}, content_type="application/json")
    assert response.status_code == 400
    assert not BulkAction.objects.exists()


def test_the_bulk_action_of_another_application_is_not_found(
    pages_application: Application, other_pages_application: Application
) -> None:
    add_run(other_pages_application)
    other = api_client(other_pages_application, "view", "start", username="other-robot")
    body = other.post(
        "/api/v1/applications/other/retries", {"filter": {}}, content_type="application/json"
    ).json()
    robot = api_client(pages_application, "view", "start")
    assert robot.get(f"{API}/bulk-actions/{body['id']}").status_code == 404
    assert robot.get(f"/api/v1/applications/other/bulk-actions/{body['id']}").status_code == 404
