"""The JSON API: what the Task starter page does, for programs. OpenAPI at /api/v1/docs."""

from __future__ import annotations

from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer, SessionAuth
from pydantic import BaseModel, ConfigDict, Field

from lime_task.status import Origin
from limepkg_task_starter import selectors
from limepkg_task_starter.arguments import ArgumentsError
from limepkg_task_starter.models import ApiToken
from limepkg_task_starter.permissions import VIEW_RUNS, VIEW_TRACEBACK
from limepkg_task_starter.refusals import REFUSALS, refusal_messages, refusal_status
from limepkg_task_starter.services import starting
from limepkg_task_starter.services.tokens import api_token_hash
from limepkg_task_starter.throttling import ThrottledError, api_token_refused

ARGUMENTS_DO_NOT_FIT = "The arguments do not fit the task."
MAY_NOT_VIEW_RUNS = "You may not view runs."
MAY_NOT_VIEW_RUN_LOGS = "You may not see run logs and tracebacks."
NO_SUCH_APPLICATION = "No such application"
NO_SUCH_RUN = "No such run"
REQUEST_DOES_NOT_FIT = "The request does not fit the API's description."
UNAUTHORISED = "Log in, or send Authorization: Bearer <token>."


class ApiRequest(HttpRequest):
    """A request that passed authentication: ``auth`` is the user it acts as."""

    auth: Any


class StaffSession(SessionAuth):
    """The admin login (with CSRF on writes), for active staff only."""

    def _get_key(self, request: HttpRequest) -> str | None:
        # Without a logged-in session there is nothing for CSRF to protect: answer 401 (not
        # authenticated) rather than 403 "CSRF check failed".
        if not request.user.is_authenticated:
            return None
        key: str | None = super()._get_key(request)
        return key

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        return user if user and user.is_active and user.is_staff else None


class BearerToken(HttpBearer):
    """``Authorization: Bearer <token>`` with a token created in the admin."""

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        found = (
            ApiToken.objects.select_related("user").filter(key_hash=api_token_hash(token)).first()
        )
        if found is None or not (found.user.is_active and found.user.is_staff):
            api_token_refused(request)
            return None
        request.user = found.user
        return found.user


api = NinjaAPI(
    title="Task starter API",
    version="1",
    description="Start an application's tasks, read their status, and list, pause and resume "
    "its schedules.",
    auth=[BearerToken(), StaffSession(csrf=True)],
    urls_namespace="task_starter_api",
)


def _refused(request: HttpRequest, error: Exception | type[Exception]) -> HttpResponse:
    """Every refused start: one status per refusal type, and a Problem body."""
    assert isinstance(error, Exception)  # ninja hands handlers the exception raised
    messages = refusal_messages(error)
    detail = ARGUMENTS_DO_NOT_FIT if isinstance(error, ArgumentsError) else messages[0]
    return api.create_response(
        request, {"detail": detail, "errors": messages}, status=refusal_status(error)
    )


for _refusal in REFUSALS:
    api.add_exception_handler(_refusal, _refused)


@api.exception_handler(ValidationError)
def _invalid_request(request: HttpRequest, error: ValidationError) -> HttpResponse:
    """A request that does not fit the API's description: 422, a Problem naming each part."""
    errors = [
        f"{'.'.join(str(part) for part in item.get('loc', ()))}: {item.get('msg', '')}"
        for item in error.errors
    ]
    return api.create_response(
        request, {"detail": REQUEST_DOES_NOT_FIT, "errors": errors}, status=422
    )


@api.exception_handler(ThrottledError)
def _throttled(request: HttpRequest, error: ThrottledError) -> HttpResponse:
    response = api.create_response(request, {"detail": str(error)}, status=429)
    response["Retry-After"] = str(error.retry_after)
    return response


@api.exception_handler(AuthenticationError)
def _unauthorised(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return api.create_response(request, {"detail": UNAUTHORISED, "errors": []}, status=401)


class StartRequest(BaseModel):
    """A plain pydantic model, not a ninja Schema: a Schema reads attributes off whatever it is
    given, so a body of ``[1, 2]``, ``"x"`` or ``null`` would pass as all defaults."""

    model_config = ConfigDict(extra="forbid")

    arguments: dict[str, Any] | list[Any] = Field(
        default_factory=dict,
        description="By name (an object) or by position (an array), checked against the task.",
    )
    run_as: Literal["self", "impersonation"] = Field(
        default="self", description="Yourself, or the application's impersonation user."
    )


class Started(Schema):
    id: str
    status: str


class RunStatus(Schema):
    id: str
    status: str
    result: Any = None


class RunLogOut(Schema):
    text: str = Field(description="The first and the last lines kept, newline-separated.")
    lines: int = Field(description="How many lines the run logged.")
    dropped: int = Field(description="How many of them were dropped between the kept ones.")
    complete: bool = Field(description="Whether the run has ended, so no more will come.")


class Problem(Schema):
    detail: str
    errors: list[str] = []


# What every operation may answer besides its own: not authenticated, not what the API takes.
COMMON_RESPONSES: dict[int, type[Schema]] = {401: Problem, 422: Problem, 429: Problem}


def _application(request: ApiRequest, app_name: str) -> Any:
    application = selectors.application_for_user(user=request.auth, name=app_name)
    if application is None:
        raise HttpError(404, NO_SUCH_APPLICATION)
    return application


@api.post(
    "/applications/{app_name}/tasks/{task_name}/runs",
    response={202: Started, 400: Problem, 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="Start a task",
    tags=["runs"],
)
def start_task(request: ApiRequest, app_name: str, task_name: str, body: StartRequest) -> Any:
    run = starting.run_start(
        actor=request.auth,
        application=_application(request, app_name),
        task_name=task_name,
        arguments=body.arguments,
        run_as=(
            starting.RunAs.IMPERSONATION_USER
            if body.run_as == "impersonation"
            else starting.RunAs.ACTOR
        ),
        origin=Origin.API,
    )
    return Status(202, {"id": run.id, "status": run.status})


@api.get(
    "/applications/{app_name}/runs/{run_id}",
    response={200: RunStatus, 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="Read a run's status",
    tags=["runs"],
)
def run_status(request: ApiRequest, app_name: str, run_id: str) -> Any:
    application = _application(request, app_name)
    if not request.auth.has_perm(VIEW_RUNS):
        return Status(403, {"detail": MAY_NOT_VIEW_RUNS})
    status = selectors.run_status_get(task_id=run_id, application_name=application.name)
    if status is None:
        return Status(404, {"detail": NO_SUCH_RUN})
    return Status(200, status.to_json())


@api.get(
    "/applications/{app_name}/runs/{run_id}/log",
    response={200: RunLogOut, 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="Read a run's log lines",
    description="What the task logged while it ran, as its task handler kept it; the same "
    "permission as tracebacks.",
    tags=["runs"],
)
def run_log(request: ApiRequest, app_name: str, run_id: str) -> Any:
    application = _application(request, app_name)
    if not (request.auth.has_perm(VIEW_RUNS) and request.auth.has_perm(VIEW_TRACEBACK)):
        return Status(403, {"detail": MAY_NOT_VIEW_RUN_LOGS})
    run = selectors.run_for_user(user=request.auth, run_id=run_id)
    if run is None or run.application_id != application.name:
        return Status(404, {"detail": NO_SUCH_RUN})
    log = selectors.run_log_of(run=run)
    return Status(
        200,
        {
            "text": log.text if log else "",
            "lines": log.lines if log else 0,
            "dropped": log.dropped if log else 0,
            "complete": run.is_completed,
        },
    )


api.add_router("/queues", "limepkg_task_starter.api_queues.router")
api.add_router("", "limepkg_task_starter.api_runs.router")  # list, cancel, retry runs
# By import path, not an import: the interface modules stay independent of each other.
api.add_router("", "limepkg_task_starter.api_schedules.router")
