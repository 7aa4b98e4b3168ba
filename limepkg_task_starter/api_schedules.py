"""The JSON API's schedules: list an application's schedules, pause and resume one.

A router of its own, added to the API in ``api.py`` by its import path, with the same
authentication, refusal handlers and application isolation as the rest of the API: another
application's schedule answers 404, as a missing one does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Router, Schema, Status
from ninja.errors import HttpError
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from limepkg_task_starter import selectors
from limepkg_task_starter.permissions import VIEW_RUNS
from limepkg_task_starter.schedule_summary import ScheduleRow
from limepkg_task_starter.services.schedules import schedule_pause, schedule_resume

MAY_NOT_VIEW_SCHEDULES = "You may not view schedules."
NO_SUCH_APPLICATION = "No such application"
NO_SUCH_SCHEDULE = "No such schedule"

router = Router(tags=["schedules"])


class Problem(Schema):
    """As the rest of the API answers a refusal (the same schema, by name, in the description)."""

    detail: str
    errors: list[str] = []


class Pause(Schema):
    since: datetime
    by: str
    until: datetime | None = Field(description="When it ends by itself; null: when resumed.")


class LastRun(Schema):
    id: str
    status: str
    sent_at: datetime


class ScheduleOut(Schema):
    id: int = Field(description="The periodic task's id.")
    name: str
    declared_in_code: bool = Field(description="Declared in code (false: added in the admin).")
    task: str
    cron: str = Field(description="The cron expression; empty for an interval or other kind.")
    description: str = Field(description="When it runs, in words.")
    timezone: str
    enabled: bool
    paused: Pause | None
    next_runs: list[datetime] = Field(description="The next five, in UTC.")
    last_run: LastRun | None
    exposed: bool = Field(description="The application exposes its task.")
    disabled_in_config: bool = Field(
        description="Disabled by the application's configuration: each tick records a Skipped run."
    )


class PauseRequest(BaseModel):
    """A plain pydantic model, as the start request: a body that is not an object is refused."""

    model_config = ConfigDict(extra="forbid")

    until: AwareDatetime | None = Field(
        default=None,
        description="When the pause ends by itself, with its offset; null or left out: until "
        "resumed. Ticks inside the pause are not run later.",
    )


COMMON_RESPONSES: dict[int, type[Schema]] = {401: Problem, 422: Problem, 429: Problem}


def _schedule_out(row: ScheduleRow) -> dict[str, Any]:
    pause = row.pause
    last = row.last_run
    return {
        "id": row.id,
        "name": row.periodic.name,
        "declared_in_code": row.declared,
        "task": row.task_name,
        "cron": row.expression,
        "description": row.words,
        "timezone": row.timezone,
        "enabled": row.enabled,
        "paused": (
            {"since": pause.paused_at, "by": pause.paused_by_username, "until": pause.until}
            if pause is not None
            else None
        ),
        "next_runs": row.next_runs,
        "last_run": (
            {"id": last.id, "status": last.status, "sent_at": last.created_at} if last else None
        ),
        "exposed": row.exposed,
        "disabled_in_config": row.disabled_in_config,
    }


def _application(request: Any, app_name: str) -> Any:
    application = selectors.application_for_user(user=request.auth, name=app_name)
    if application is None:
        raise HttpError(404, NO_SUCH_APPLICATION)
    return application


def _schedule(application: Any, schedule_id: int) -> Any:
    periodic = selectors.application_periodic_task(application=application, schedule_id=schedule_id)
    if periodic is None:
        raise HttpError(404, NO_SUCH_SCHEDULE)
    return periodic


def _answer(application: Any, schedule_id: int) -> dict[str, Any]:
    """The schedule as it is now, read again after the change."""
    periodic = _schedule(application, schedule_id)
    return _schedule_out(selectors.application_schedule(application=application, periodic=periodic))


@router.get(
    "/applications/{app_name}/schedules",
    response={200: list[ScheduleOut], 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="List an application's schedules",
)
def list_schedules(request: Any, app_name: str) -> Any:
    application = _application(request, app_name)
    if not request.auth.has_perm(VIEW_RUNS):
        return Status(403, {"detail": MAY_NOT_VIEW_SCHEDULES})
    rows = selectors.application_schedules(application=application)
    return Status(200, [_schedule_out(row) for row in rows])


@router.post(
    "/applications/{app_name}/schedules/{schedule_id}/pause",
    response={200: ScheduleOut, 400: Problem, 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="Pause a schedule",
    description="Its ticks are skipped until it is resumed, or until `until`. Needs *Can "
    "pause and resume schedules*.",
)
def pause_schedule(request: Any, app_name: str, schedule_id: int, body: PauseRequest) -> Any:
    application = _application(request, app_name)
    periodic = _schedule(application, schedule_id)
    schedule_pause(
        actor=request.auth, application=application.name, periodic_task=periodic, until=body.until
    )
    return Status(200, _answer(application, schedule_id))


@router.post(
    "/applications/{app_name}/schedules/{schedule_id}/resume",
    response={200: ScheduleOut, 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="Resume a schedule",
    description="It fires from its next tick; the ticks missed while paused are not run. "
    "Resuming a schedule that is not paused changes nothing.",
)
def resume_schedule(request: Any, app_name: str, schedule_id: int) -> Any:
    application = _application(request, app_name)
    periodic = _schedule(application, schedule_id)
    schedule_resume(actor=request.auth, application=application.name, periodic_task=periodic)
    return Status(200, _answer(application, schedule_id))
