"""The JSON API: what the Task starter page does, for programs. OpenAPI at /api/v1/docs."""

from __future__ import annotations

import json
from typing import Any, Literal

from django.http import HttpRequest
from ninja import NinjaAPI, Schema, Status
from ninja.errors import HttpError
from ninja.security import HttpBearer, SessionAuth

from lime_task.exceptions import InvalidArgumentsError, NotFoundError
from limepkg_task_starter import selectors, services
from limepkg_task_starter.arguments import ArgumentsError
from limepkg_task_starter.models import ApiToken, Origin

VIEW_RUNS = "limepkg_task_starter.view_taskrun"


class StaffSession(SessionAuth):
    """The admin login (with CSRF on writes), for active staff only."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user and user.is_active and user.is_staff else None


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` with a token created in the admin."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=services.api_token_hash(token))
            .first()
        )
        if found is None or not (found.user.is_active and found.user.is_staff):
            return None
        request.user = found.user
        return found.user


api = NinjaAPI(
    title="Task starter API",
    version="1",
    description="Start an application's tasks and read their status.",
    auth=[BearerToken(), StaffSession(csrf=True)],
    urls_namespace="task_starter_api",
)


class StartRequest(Schema):
    arguments: dict[str, Any] | list[Any] = {}
    run_as: Literal["self", "impersonation"] = "self"


class Started(Schema):
    id: str
    status: str


class RunStatus(Schema):
    id: str
    status: str
    result: Any = None


class Problem(Schema):
    detail: str
    errors: list[str] = []


def _application(request: HttpRequest, app_name: str) -> Any:
    application = selectors.application_for_user(user=request.auth, name=app_name)
    if application is None:
        raise HttpError(404, "No such application")
    return application


@api.post(
    "/applications/{app_name}/tasks/{task_name}/runs",
    response={202: Started, 400: Problem, 403: Problem, 404: Problem},
    summary="Start a task",
    tags=["runs"],
)
def start_task(request: HttpRequest, app_name: str, task_name: str, body: StartRequest) -> Any:
    application = _application(request, app_name)
    try:
        run = services.run_start(
            user=request.auth,
            application=application,
            task_name=task_name,
            arguments_json=json.dumps(body.arguments),
            as_impersonation=body.run_as == "impersonation",
            origin=Origin.API,
        )
    except ArgumentsError as error:
        return Status(
            400, {"detail": "The arguments do not fit the task.", "errors": error.messages}
        )
    except InvalidArgumentsError as error:
        return Status(400, {"detail": str(error), "errors": [str(error)]})
    except services.StartRefusedError as error:
        return Status(403, {"detail": str(error)})
    except NotFoundError as error:
        return Status(404, {"detail": str(error)})
    return Status(202, {"id": run.id, "status": run.status})


@api.get(
    "/applications/{app_name}/runs/{run_id}",
    response={200: RunStatus, 403: Problem, 404: Problem},
    summary="Read a run's status",
    tags=["runs"],
)
def run_status(request: HttpRequest, app_name: str, run_id: str) -> Any:
    application = _application(request, app_name)
    if not request.auth.has_perm(VIEW_RUNS):
        return Status(403, {"detail": "You may not view runs."})
    status = selectors.run_status_get(task_id=run_id, application_name=application.name)
    if status is None:
        return Status(404, {"detail": "No such run"})
    return Status(200, status.to_json())
