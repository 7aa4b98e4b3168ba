"""Who may do what: every page, action and API call for every kind of user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from lime_task.exceptions import InvalidArgumentsError, NotFoundError, UnknownTaskError
from limepkg_task_starter.arguments import ArgumentsError
from limepkg_task_starter.models import (
    Application,
    AuditEntry,
    BulkAction,
    ScheduleDeclaration,
    TaskRun,
)
from limepkg_task_starter.refusals import refusal_status
from limepkg_task_starter.services import starting
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

ROLES: dict[str, dict[str, Any]] = {
    "anonymous": {},
    "non_staff": {"staff": False, "perms": ("view", "start")},
    "staff_without_permissions": {},
    "starter": {"perms": ("view", "start")},
    "impersonator": {"perms": ("view", "start", "impersonate")},
    "canceller": {"perms": ("view", "cancel")},
    "pauser": {"perms": ("view", "pause")},
    "queue_operator": {"perms": ("view", "pause_queue")},
    "other_application": {
        "perms": ("view", "start", "impersonate", "cancel", "pause"),
        "other": True,
    },
}

LOGIN, FORBIDDEN, MISSING, UNAUTHORISED = "login", 403, 404, 401


def call(client: Client, action: str, run: TaskRun, schedule: ScheduleDeclaration) -> Any:
    base = "/admin/task-starter"
    task_page = f"{base}/demo/tasks/{DUMMY}/"
    api_start = f"/api/v1/applications/demo/tasks/{DUMMY}/runs"
    return {
        "index": lambda: client.get(f"{base}/"),
        "task_list": lambda: client.get(f"{base}/demo/"),
        "task_page": lambda: client.get(task_page),
        "start": lambda: client.post(task_page, {"arguments": "{}", "run_as": "self"}),
        "start_impersonated": lambda: client.post(
            task_page, {"arguments": "{}", "run_as": "impersonation"}
        ),
        "run_row": lambda: client.get(f"{base}/runs/{run.id}/row/"),
        "history": lambda: client.get(f"{task_page}history/"),
        "run_info": lambda: client.get(f"{base}/runs/{run.id}/"),
        "rerun": lambda: client.post(f"{base}/runs/{run.id}/rerun/"),
        "run_now": lambda: client.post(f"{base}/schedules/{schedule.id}/run-now/"),
        "api_start": lambda: client.post(
            api_start, {"arguments": {"number": 1}}, content_type="application/json"
        ),
        "api_start_impersonated": lambda: client.post(
            api_start, {"arguments": {}, "run_as": "impersonation"}, content_type="application/json"
        ),
        "api_status": lambda: client.get(f"/api/v1/applications/demo/runs/{run.id}"),
        "api_log": lambda: client.get(f"/api/v1/applications/demo/runs/{run.id}/log"),
        "runs": lambda: client.get(f"{base}/demo/runs/"),
        "runs_live": lambda: client.get(f"{base}/demo/runs/live/"),
        "retry": lambda: client.post(f"{base}/demo/runs/retry/", {"run": run.id, "confirm": "yes"}),
        "rerun_confirm": lambda: client.get(f"{base}/runs/{run.id}/rerun/"),
        "run_now_confirm": lambda: client.get(f"{base}/schedules/{schedule.id}/run-now/"),
        "cancel_confirm": lambda: client.get(f"{base}/runs/{run.id}/cancel/"),
        "cancel": lambda: client.post(f"{base}/runs/{run.id}/cancel/"),
        "workers": lambda: client.get(f"{base}/workers/"),
        "workers_of_application": lambda: client.get(f"{base}/workers/?application=demo"),
        "workers_live": lambda: client.get(
            f"{base}/workers/?application=demo", HTTP_HX_REQUEST="true"
        ),
        **queue_calls(client),
        **_bulk_and_api_runs(client, run),
        **schedule_calls(client, schedule),
    }[action]()


QUEUE = "lime_task_queue_background"


def queue_calls(client: Client) -> dict[str, Callable[[], Any]]:
    """Pause and Resume a queue, on the handlers page and in the API."""
    page = f"/admin/task-starter/workers/queues/{QUEUE}"
    api = "/api/v1/queues"
    return {
        "queue_pause_confirm": lambda: client.get(f"{page}/pause/"),
        "queue_pause": lambda: client.post(f"{page}/pause/"),
        "queue_resume_confirm": lambda: client.get(f"{page}/resume/"),
        "queue_resume": lambda: client.post(f"{page}/resume/"),
        "api_queues": lambda: client.get(api),
        "api_queue_pause": lambda: client.post(f"{api}/{QUEUE}/pause"),
        "api_queue_resume": lambda: client.post(f"{api}/{QUEUE}/resume"),
    }


QUEUE_PAGES = ["queue_pause_confirm", "queue_pause", "queue_resume_confirm", "queue_resume"]
QUEUE_API = ["api_queues", "api_queue_pause", "api_queue_resume"]
# Queues serve every application: whoever may see runs may list them; only the pause
# permission pauses or resumes, whichever application the person belongs to.
QUEUES_WITHOUT_PAUSE = dict.fromkeys(QUEUE_PAGES, FORBIDDEN) | {
    "api_queues": 200,
    "api_queue_pause": FORBIDDEN,
    "api_queue_resume": FORBIDDEN,
}


def _bulk_and_api_runs(client: Client, run: TaskRun) -> dict[str, Callable[[], Any]]:
    """The runs page over its whole filter (bulk actions, CSV), and the runs API."""
    runs = "/admin/task-starter/demo/runs"
    api = "/api/v1/applications/demo"
    everything = {"filter": "", "confirm": "yes"}

    def a_bulk_action() -> int:
        return BulkAction.objects.create(
            application_id="demo", kind="retry", actor_username="someone", matched=0
        ).id

    return {
        "runs_export": lambda: client.get(f"{runs}/export.csv"),
        "retry_all_confirm": lambda: client.get(f"{runs}/retry-all/"),
        "retry_all": lambda: client.post(f"{runs}/retry-all/", everything),
        "cancel_all_confirm": lambda: client.get(f"{runs}/cancel-all/"),
        "cancel_all": lambda: client.post(f"{runs}/cancel-all/", everything),
        "bulk_progress": lambda: client.get(f"{runs}/bulk/{a_bulk_action()}/"),
        "api_runs": lambda: client.get(f"{api}/runs"),
        "api_cancel": lambda: client.post(f"{api}/runs/{run.id}/cancel"),
        "api_retry": lambda: client.post(
            f"{api}/retries", {"ids": [run.id]}, content_type="application/json"
        ),
        "api_retry_filter": lambda: client.post(
            f"{api}/retries", {"filter": {}}, content_type="application/json"
        ),
        "api_bulk_status": lambda: client.get(f"{api}/bulk-actions/{a_bulk_action()}"),
    }


BULK_PAGES = [
    "runs_export",
    "retry_all_confirm",
    "retry_all",
    "cancel_all_confirm",
    "cancel_all",
    "bulk_progress",
]
API_RUNS = ["api_runs", "api_cancel", "api_retry", "api_retry_filter", "api_bulk_status"]
# What a member who may view runs gets, by what else they may do; a_run is a failed run.
BULK_AND_API_RUNS = {
    "starter": {
        "runs_export": 200,
        "retry_all_confirm": 200,
        "retry_all": 302,  # to the bulk action's progress
        "cancel_all_confirm": FORBIDDEN,
        "cancel_all": FORBIDDEN,
        "bulk_progress": 200,
        "api_runs": 200,
        "api_cancel": FORBIDDEN,
        "api_retry": 200,
        "api_retry_filter": 202,
        "api_bulk_status": 200,
    },
    "canceller": {
        "runs_export": 200,
        "retry_all_confirm": FORBIDDEN,
        "retry_all": FORBIDDEN,
        "cancel_all_confirm": 200,
        "cancel_all": 302,  # back to the runs page: no waiting run matches
        "bulk_progress": 200,
        "api_runs": 200,
        "api_cancel": 409,  # it has already ended
        "api_retry": FORBIDDEN,
        "api_retry_filter": FORBIDDEN,
        "api_bulk_status": 200,
    },
}


def schedule_calls(client: Client, schedule: ScheduleDeclaration) -> dict[str, Any]:
    """The Schedules tab and the schedules API (schedules are addressed by periodic task)."""
    tab = "/admin/task-starter/demo/schedules/"
    api = "/api/v1/applications/demo/schedules"
    one = schedule.periodic_task_id
    return {
        "schedules": lambda: client.get(tab),
        "schedule_pause_confirm": lambda: client.get(f"{tab}{one}/pause/"),
        "schedule_pause": lambda: client.post(f"{tab}{one}/pause/"),
        "schedule_resume_confirm": lambda: client.get(f"{tab}{one}/resume/"),
        "schedule_resume": lambda: client.post(f"{tab}{one}/resume/"),
        # Run now from the tab: any schedule of the application, by periodic task.
        "schedule_run_now_confirm": lambda: client.get(f"{tab}{one}/run-now/"),
        "schedule_run_now": lambda: client.post(f"{tab}{one}/run-now/"),
        "api_schedules": lambda: client.get(api),
        "api_schedule_pause": lambda: client.post(
            f"{api}/{one}/pause", {}, content_type="application/json"
        ),
        "api_schedule_resume": lambda: client.post(f"{api}/{one}/resume"),
    }


SCHEDULE_PAGES = [
    "schedules",
    "schedule_pause_confirm",
    "schedule_pause",
    "schedule_resume_confirm",
    "schedule_resume",
]
SCHEDULE_API = ["api_schedules", "api_schedule_pause", "api_schedule_resume"]
# Who may see runs sees the tab and the list; pausing and resuming need their own permission.
VIEWER_OF_SCHEDULES = {
    "schedules": 200,
    "api_schedules": 200,
    **dict.fromkeys(
        [
            "schedule_pause_confirm",
            "schedule_pause",
            "schedule_resume_confirm",
            "schedule_resume",
            "api_schedule_pause",
            "api_schedule_resume",
        ],
        FORBIDDEN,
    ),
}


NEW_PAGES = ["runs", "runs_live", "retry", "rerun_confirm", "run_now_confirm", "cancel_confirm"]
# Task handlers serve every application: the page is the same for every member who may see runs
# (runs in progress are counted for the viewer's applications only).
SHARED_PAGES = ["workers"]
# The same page with an application's tabs, and its polled live part: that application's
# members only.
APPLICATION_WORKERS = ["workers_of_application", "workers_live"]


EXPECTED = {
    "anonymous": dict.fromkeys(
        [
            "index",
            "task_list",
            "task_page",
            "start",
            "start_impersonated",
            "run_row",
            "history",
            "run_info",
            "rerun",
            "run_now",
            *NEW_PAGES,
            *SHARED_PAGES,
            *APPLICATION_WORKERS,
            "cancel",
            *SCHEDULE_PAGES,
            *QUEUE_PAGES,
        ],
        LOGIN,
    )
    | dict.fromkeys(
        ["api_start", "api_start_impersonated", "api_status", "api_log", *QUEUE_API, *SCHEDULE_API],
        UNAUTHORISED,
    ),
    "staff_without_permissions": dict.fromkeys(
        [
            "index",
            "task_list",
            "task_page",
            "start",
            "start_impersonated",
            "run_row",
            "history",
            "run_info",
            "rerun",
            "run_now",
            "api_start",
            "api_start_impersonated",
            "api_status",
            "api_log",
            *NEW_PAGES,
            *SHARED_PAGES,
            *APPLICATION_WORKERS,
            "cancel",
            *SCHEDULE_PAGES,
            *SCHEDULE_API,
            *QUEUE_PAGES,
            *QUEUE_API,
        ],
        FORBIDDEN,
    ),
    "starter": {
        "index": 302,
        "task_list": 200,
        "task_page": 200,
        "start": 302,
        "start_impersonated": FORBIDDEN,
        "run_row": 286,
        "history": 286,
        "run_info": 200,
        "rerun": 302,
        "run_now": FORBIDDEN,  # runs as the schedule's session user: impersonation
        "api_start": 202,
        "api_start_impersonated": FORBIDDEN,
        "api_status": 200,
        "api_log": FORBIDDEN,  # like tracebacks: view_traceback (see test_run_logs.py)
        "runs": 200,
        "runs_live": 200,
        "retry": 302,
        "rerun_confirm": 200,
        "run_now_confirm": 200,
        "cancel_confirm": FORBIDDEN,
        "cancel": FORBIDDEN,
        "workers": 200,
        **dict.fromkeys(APPLICATION_WORKERS, 200),
        **QUEUES_WITHOUT_PAUSE,
    },
    "impersonator": {
        "index": 302,
        "task_list": 200,
        "task_page": 200,
        "start": 302,
        "start_impersonated": 302,
        "run_row": 286,
        "history": 286,
        "run_info": 200,
        "rerun": 302,
        "run_now": 302,
        "api_start": 202,
        "api_start_impersonated": 202,
        "api_status": 200,
        "api_log": FORBIDDEN,  # like tracebacks: view_traceback (see test_run_logs.py)
        "runs": 200,
        "runs_live": 200,
        "retry": 302,
        "rerun_confirm": 200,
        "run_now_confirm": 200,
        "cancel_confirm": FORBIDDEN,
        "cancel": FORBIDDEN,
        "workers": 200,
        **dict.fromkeys(APPLICATION_WORKERS, 200),
        **QUEUES_WITHOUT_PAUSE,
    },
    "canceller": {
        "index": 302,
        "task_list": 200,
        "task_page": 200,
        "start": FORBIDDEN,
        "start_impersonated": FORBIDDEN,
        "run_row": 286,
        "history": 286,
        "run_info": 200,
        "rerun": FORBIDDEN,
        "run_now": FORBIDDEN,
        "api_start": FORBIDDEN,
        "api_start_impersonated": FORBIDDEN,
        "api_status": 200,
        "api_log": FORBIDDEN,  # like tracebacks: view_traceback (see test_run_logs.py)
        "runs": 200,
        "runs_live": 200,
        "retry": 302,  # back to the runs page, saying why nothing was started
        "rerun_confirm": FORBIDDEN,
        "run_now_confirm": FORBIDDEN,
        "cancel_confirm": 200,
        "cancel": 302,  # back, saying the run has already ended
        "workers": 200,
        **dict.fromkeys(APPLICATION_WORKERS, 200),
        **QUEUES_WITHOUT_PAUSE,
    },
    "other_application": {
        "index": 302,
        "task_list": MISSING,
        "task_page": MISSING,
        "start": MISSING,
        "start_impersonated": MISSING,
        "run_row": MISSING,
        "history": MISSING,
        "run_info": MISSING,
        "rerun": MISSING,
        "run_now": MISSING,
        "api_start": MISSING,
        "api_start_impersonated": MISSING,
        "api_status": MISSING,
        "api_log": MISSING,
        **dict.fromkeys([*NEW_PAGES, "cancel"], MISSING),
        "workers": 200,
        **dict.fromkeys(APPLICATION_WORKERS, MISSING),
        **QUEUES_WITHOUT_PAUSE,
    },
    "queue_operator": {
        "index": 302,
        "task_list": 200,
        "task_page": 200,
        "start": FORBIDDEN,
        "start_impersonated": FORBIDDEN,
        "run_row": 286,
        "history": 286,
        "run_info": 200,
        "rerun": FORBIDDEN,
        "run_now": FORBIDDEN,
        "api_start": FORBIDDEN,
        "api_start_impersonated": FORBIDDEN,
        "api_status": 200,
        "api_log": FORBIDDEN,
        "runs": 200,
        "runs_live": 200,
        "retry": 302,  # back to the runs page, saying why nothing was started
        "rerun_confirm": FORBIDDEN,
        "run_now_confirm": FORBIDDEN,
        "cancel_confirm": FORBIDDEN,
        "cancel": FORBIDDEN,
        "workers": 200,
        **dict.fromkeys(APPLICATION_WORKERS, 200),
        "queue_pause_confirm": 200,
        "queue_pause": 302,
        "queue_resume_confirm": 200,
        "queue_resume": 302,  # back, saying the queue is not paused
        "api_queues": 200,
        "api_queue_pause": 200,
        "api_queue_resume": 409,  # not paused
    },
}
EXPECTED["pauser"] = {
    "schedules": 200,
    "schedule_pause_confirm": 200,
    "schedule_pause": 302,
    "schedule_resume_confirm": 200,
    "schedule_resume": 302,  # back to the tab, saying it was not paused
    "api_schedules": 200,
    "api_schedule_pause": 200,
    "api_schedule_resume": 200,
    "run_now": FORBIDDEN,  # pausing is not starting
    "start": FORBIDDEN,
}
for _role in ("starter", "impersonator", "canceller", "queue_operator"):
    EXPECTED[_role] |= VIEWER_OF_SCHEDULES
EXPECTED["other_application"] |= dict.fromkeys([*SCHEDULE_PAGES, *SCHEDULE_API], MISSING)
EXPECTED["anonymous"] |= dict.fromkeys(BULK_PAGES, LOGIN) | dict.fromkeys(API_RUNS, UNAUTHORISED)
EXPECTED["staff_without_permissions"] |= dict.fromkeys([*BULK_PAGES, *API_RUNS], FORBIDDEN)
EXPECTED["starter"] |= BULK_AND_API_RUNS["starter"]
EXPECTED["impersonator"] |= BULK_AND_API_RUNS["starter"]
EXPECTED["canceller"] |= BULK_AND_API_RUNS["canceller"]
EXPECTED["other_application"] |= dict.fromkeys([*BULK_PAGES, *API_RUNS], MISSING)
# Run now from the Schedules tab is Run now from the task page, by another address.
for _expected in EXPECTED.values():
    for _tab_action, _page_action in (
        ("schedule_run_now", "run_now"),
        ("schedule_run_now_confirm", "run_now_confirm"),
    ):
        if _page_action in _expected:
            _expected[_tab_action] = _expected[_page_action]
EXPECTED["non_staff"] = EXPECTED["anonymous"]
MATRIX = [(role, action) for role in ROLES for action in EXPECTED[role]]


@pytest.fixture
def client_for(
    pages_application: Application, other_pages_application: Application
) -> Callable[[str], Client]:
    def build(role: str) -> Client:
        client = Client()
        if role != "anonymous":
            options = dict(ROLES[role])
            other = options.pop("other", False)
            user = make_user(
                role,
                applications=(other_pages_application if other else pages_application,),
                **options,
            )
            client.force_login(user)
        return client

    return build


@pytest.mark.parametrize(("role", "action"), MATRIX)
def test_permission_matrix(
    client_for, a_run: TaskRun, a_schedule: ScheduleDeclaration, role: str, action: str
) -> None:
    response = call(client_for(role), action, a_run, a_schedule)
    expected = EXPECTED[role][action]
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
    else:
        assert response.status_code == expected, response.content[:300]


@pytest.mark.parametrize(
    "action",
    [
        "start",
        "rerun",
        "run_now",
        "api_start",
        "retry",
        "cancel",
        "queue_pause",
        "api_queue_pause",
        "retry_all",
        "cancel_all",
        "api_cancel",
        "api_retry",
        "api_retry_filter",
        "schedule_pause",
        "schedule_resume",
        "schedule_run_now",
        "api_schedule_pause",
    ],
)
def test_csrf_is_enforced_on_every_post(
    pages_application: Application, a_run: TaskRun, a_schedule: ScheduleDeclaration, action: str
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        make_user(
            "careful",
            perms=("view", "start", "impersonate", "cancel", "pause_queue", "pause"),
            applications=(pages_application,),
        )
    )
    assert call(client, action, a_run, a_schedule).status_code == 403
    assert not AuditEntry.objects.exists()


def test_a_bearer_token_needs_no_csrf(pages_application: Application) -> None:
    from limepkg_task_starter.services.tokens import api_token_create

    user = make_user("robot", perms=("view", "start"), applications=(pages_application,))
    _, key = api_token_create(user=user, name="ci")
    client = Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {key}"})
    response = client.post(
        f"/api/v1/applications/demo/tasks/{DUMMY}/runs",
        {"arguments": [4, 5]},
        content_type="application/json",
    )
    assert response.status_code == 202
    run = TaskRun.objects.get(id=response.json()["id"])
    assert (run.arguments, run.started_by, run.origin) == ({"number": 4, "numberx": 5}, user, "api")
    assert client.get(f"/api/v1/applications/demo/runs/{run.id}").json() == {
        "id": run.id,
        "status": "PENDING",
        "result": None,
    }


def test_a_wrong_token_is_unauthorised(pages_application: Application) -> None:
    client = Client(headers={"Authorization": "Bearer nope"})
    assert client.get("/api/v1/applications/demo/runs/x").status_code == 401


# --- One start policy, whichever way in ---------------------------------------------------


def _impersonator(application: Application, *, superuser: bool = False) -> Client:
    client = Client()
    perms = ("view", "start", "impersonate")
    user = make_user("imp", perms=perms, applications=(application,), superuser=superuser)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"is_active": False}, starting.RUN_AS_USER_INACTIVE),
        ({"is_superuser": True}, starting.RUN_AS_USER_SUPERUSER),
    ],
)
def test_run_now_follows_the_impersonation_rules(
    pages_application: Application, a_schedule: ScheduleDeclaration, change, message: str
) -> None:
    User.objects.filter(username="integration-user").update(**change)
    response = _impersonator(pages_application).post(
        f"/admin/task-starter/schedules/{a_schedule.id}/run-now/"
    )
    assert response.status_code == 403
    assert message.format(user="integration-user") in response.content.decode()
    assert not TaskRun.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_superuser_may_run_now_as_a_superuser(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    User.objects.filter(username="integration-user").update(is_superuser=True)
    client = _impersonator(pages_application, superuser=True)
    response = client.post(f"/admin/task-starter/schedules/{a_schedule.id}/run-now/")
    assert response.status_code == 302
    run = TaskRun.objects.get()
    assert (run.run_as, run.language, run.kwargs) == (
        "integration-user",
        "sv",
        {"number": 4, "numberx": 5},
    )
    entry = AuditEntry.objects.get()
    assert (entry.actor_username, entry.run_as, entry.run_id) == ("imp", "integration-user", run.id)


def test_run_now_refuses_a_task_the_application_no_longer_exposes(
    pages_application: Application, a_schedule: ScheduleDeclaration
) -> None:
    pages_application.config["limepkg_task_starter"]["tasks"] = [EXAMPLE]
    pages_application.save()
    response = _impersonator(pages_application).post(
        f"/admin/task-starter/schedules/{a_schedule.id}/run-now/"
    )
    assert response.status_code == 404
    assert not TaskRun.objects.exists()


def test_rerun_of_an_impersonated_run_needs_the_impersonation_permission(
    pages_application: Application, a_run: TaskRun
) -> None:
    TaskRun.objects.filter(id=a_run.id).update(run_as="integration-user")
    client = Client()
    client.force_login(make_user("ada", perms=("view", "start"), applications=(pages_application,)))
    response = client.post(f"/admin/task-starter/runs/{a_run.id}/rerun/")
    assert response.status_code == 403
    assert "You may not start tasks as integration-user." in response.content.decode()
    assert TaskRun.objects.count() == 1


def test_the_api_refuses_before_it_reads_the_arguments(pages_application: Application) -> None:
    client = Client()
    client.force_login(make_user("viewer", perms=("view",), applications=(pages_application,)))
    response = client.post(
        f"/api/v1/applications/demo/tasks/{DUMMY}/runs",
        {"arguments": {"number": "not a number", "nope": 1}},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert response.json()["detail"] == starting.MAY_NOT_START


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        (ArgumentsError(["x: wrong."]), 400),
        (InvalidArgumentsError("too large"), 400),
        (starting.StartRefusedError("no"), 403),
        (NotFoundError("not exposed"), 404),
        (UnknownTaskError("not registered"), 404),
    ],
)
def test_each_refusal_has_one_status(refusal: Exception, status: int) -> None:
    assert refusal_status(refusal) == status
