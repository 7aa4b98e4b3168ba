"""The API's runs endpoints: what the runs page does, for programs. List an application's runs
with the page's filters and a cursor, cancel a run, retry failed runs by id or by filter (a bulk
action, as "Retry all … matching" on the page) and follow a bulk action.

The same permissions and the same isolation as the pages: another application's runs answer as
runs that do not exist. Cancel and retry go through the same services as the pages.
Registered in ``api.py`` by its import path (``api.add_router``): the API's modules stand side
by side in the interface layer and do not import each other, so the few shared names (the
``Problem`` body, the request type) are declared here again, alike.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from django.http import HttpRequest, QueryDict
from ninja import Field, Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import BaseModel, ConfigDict, model_validator

from lime_task.status import Origin, State
from limepkg_task_starter import selectors
from limepkg_task_starter.forms import RunFilterForm
from limepkg_task_starter.models import Application, BulkAction, BulkActionKind, TaskRun
from limepkg_task_starter.permissions import START, VIEW_RUNS
from limepkg_task_starter.refusals import REFUSALS, refusal_messages
from limepkg_task_starter.run_filter_text import describe_filter
from limepkg_task_starter.services import bulk, cancelling, retrying, starting

router = Router(tags=["runs"])


class ApiRequest(HttpRequest):
    """A request that passed the API's authentication: ``auth`` is the user it acts as."""

    auth: Any


class Problem(Schema):
    """As ``api.Problem`` (the same name and fields: one component in the OpenAPI description);
    the API's modules stand side by side and do not import each other."""

    detail: str
    errors: list[str] = []


COMMON_RESPONSES: dict[int, type[Schema]] = {401: Problem, 422: Problem, 429: Problem}
MAY_NOT_VIEW_RUNS = "You may not view runs."
NO_SUCH_APPLICATION = "No such application"
NO_SUCH_RUN = "No such run"

MAX_PAGE = 200
MAX_RETRY_IDS = 100  # as "Retry selected failed runs" on the page
FILTER_DOES_NOT_FIT = "The filter does not fit."
NOT_A_CURSOR = "Not a cursor this API gave: start again without one."
NO_SUCH_BULK_ACTION = "No such bulk action"
ONE_WAY = "Give either ids or filter, not both and not neither."


class RunFilter(BaseModel):
    """The runs page's filters; a field left out filters nothing."""

    model_config = ConfigDict(extra="forbid")

    status: State | None = Field(None, description="REVOKED is Cancelled on the page.")
    task: str | None = Field(None, max_length=255, description="A task's full name.")
    origin: Origin | None = None
    user: str | None = Field(None, max_length=150, description="Who started it, or ran it.")
    since: datetime | None = Field(None, description="Sent at or after (ISO 8601).")
    until: datetime | None = Field(None, description="Sent before (ISO 8601).")
    q: str | None = Field(None, max_length=200, description="Search, as on the runs page.")


class RunsQuery(RunFilter):
    cursor: str | None = Field(None, max_length=500, description="next_cursor of the last page.")
    limit: int = Field(50, ge=1, le=MAX_PAGE)


class RunOut(Schema):
    id: str
    task_name: str
    status: str
    arguments: Any = None
    result: Any = None
    error_type: str
    error_message: str
    reason: str
    origin: str
    queue: str
    started_by: str | None
    run_as: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cancelled_at: datetime | None
    rerun_of: str | None


class RunsPage(Schema):
    items: list[RunOut]
    next_cursor: str | None = Field(None, description="Pass as cursor for the next (older) page.")


class RetryRequest(BaseModel):
    """By ``ids`` (at most 100, at once) or by ``filter`` (every failed run it matches that was
    not retried yet, at most 1,000, in the background: a bulk action)."""

    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(None, min_length=1, max_length=MAX_RETRY_IDS)
    filter: RunFilter | None = None

    @model_validator(mode="after")
    def _one_way(self) -> RetryRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError(ONE_WAY)
        return self


class Retried(Schema):
    id: str = Field(description="The new run.")
    rerun_of: str
    status: str


class NotRetried(Schema):
    id: str
    reason: str


class RetryOutcome(Schema):
    started: list[Retried]
    refused: list[NotRetried]


class BulkOut(Schema):
    id: int
    kind: str
    state: str
    filter: str
    matched: int = Field(description="Runs the filter matched, counted up to the cap + 1.")
    total: int
    done: int
    refused: int


def _application(request: ApiRequest, app_name: str) -> Application:
    application = selectors.application_for_user(user=request.auth, name=app_name)
    if application is None:
        raise HttpError(404, NO_SUCH_APPLICATION)
    if not request.auth.has_perm(VIEW_RUNS):
        raise HttpError(403, MAY_NOT_VIEW_RUNS)
    return application


def _filter_form(application: Application, given: RunFilter) -> RunFilterForm:
    """The page's filter form, so the API filters as the page does; what does not fit is 400."""
    values = {
        name: value.isoformat() if isinstance(value, datetime) else str(value)
        for name, value in given.model_dump(exclude_none=True).items()
        if name in RunFilter.model_fields
    }
    data = QueryDict(mutable=True)
    data.update(values)
    form = RunFilterForm(data, task_names=selectors.run_task_names(application=application))
    if not form.is_valid():
        errors = [f"{name}: {' '.join(map(str, texts))}" for name, texts in form.errors.items()]
        raise HttpError(400, f"{FILTER_DOES_NOT_FIT} {' '.join(errors)}")
    return form


def _run_out(run: TaskRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "task_name": run.task_name,
        "status": run.status,
        "arguments": run.arguments if run.arguments is not None else run.kwargs or run.args,
        "result": run.result,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "reason": run.reason,
        "origin": run.origin,
        "queue": run.queue,
        "started_by": run.started_by.get_username() if run.started_by else None,
        "run_as": run.run_as,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "cancelled_at": run.cancelled_at,
        "rerun_of": run.rerun_of_id,
    }


def _cursor(run: TaskRun) -> str:
    text = json.dumps([run.created_at.isoformat(), run.id])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, run_id = json.loads(text)
        after = datetime.fromisoformat(moment)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise HttpError(400, NOT_A_CURSOR) from error
    if after.tzinfo is None or not isinstance(run_id, str) or "\x00" in run_id:
        raise HttpError(400, NOT_A_CURSOR)
    return after, run_id


@router.get(
    "/applications/{app_name}/runs",
    response={200: RunsPage, 400: Problem, 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="List runs, newest first, with the runs page's filters",
)
def list_runs(request: ApiRequest, app_name: str, query: Query[RunsQuery]) -> Any:
    application = _application(request, app_name)
    form = _filter_form(application, query)
    after = _after(query.cursor) if query.cursor else None
    runs = list(
        selectors.runs_after(application=application, filters=form.filters(), after=after)[
            : query.limit + 1
        ]
    )
    more = len(runs) > query.limit
    runs = runs[: query.limit]
    return {
        "items": [_run_out(run) for run in runs],
        "next_cursor": _cursor(runs[-1]) if more else None,
    }


@router.post(
    "/applications/{app_name}/runs/{run_id}/cancel",
    response={200: RunOut, 403: Problem, 404: Problem, 409: Problem, **COMMON_RESPONSES},
    summary="Cancel a waiting or running run",
)
def cancel_run(request: ApiRequest, app_name: str, run_id: str) -> Any:
    application = _application(request, app_name)
    run = selectors.run_for_user(user=request.auth, run_id=run_id)
    if run is None or run.application_id != application.name:
        raise HttpError(404, NO_SUCH_RUN)
    return _run_out(cancelling.run_cancel(actor=request.auth, run=run))


@router.post(
    "/applications/{app_name}/retries",
    response={
        200: RetryOutcome,
        202: BulkOut,
        400: Problem,
        403: Problem,
        404: Problem,
        409: Problem,
        **COMMON_RESPONSES,
    },
    summary="Retry failed runs, by id or by filter",
)
def retry_runs(request: ApiRequest, app_name: str, body: RetryRequest) -> Any:
    application = _application(request, app_name)
    if not request.auth.has_perm(START):
        raise starting.StartRefusedError(starting.MAY_NOT_START)
    if body.filter is not None:
        return Status(202, _bulk_out(_retry_all(request, application, body.filter)))
    found = {
        run.id: run
        for run in selectors.runs_by_ids(application=application, run_ids=body.ids or [])
    }
    started, refused = [], []
    for run_id in dict.fromkeys(body.ids or []):
        run = found.get(run_id)
        if run is None:
            refused.append({"id": run_id, "reason": NO_SUCH_RUN})
            continue
        try:
            new = retrying.run_retry(actor=request.auth, run=run)
        except REFUSALS as error:
            refused.append({"id": run_id, "reason": " ".join(refusal_messages(error))})
            continue
        started.append({"id": new.id, "rerun_of": run_id, "status": new.status})
    return {"started": started, "refused": refused}


def _retry_all(request: ApiRequest, application: Application, given: RunFilter) -> BulkAction:
    form = _filter_form(application, given)
    kind = BulkActionKind.RETRY
    runs = selectors.runs_to_act_on(application=application, filters=form.filters(), kind=kind)
    return bulk.bulk_action_start(
        actor=request.auth,
        application=application,
        kind=kind,
        run_ids=list(runs.values_list("id", flat=True)[: selectors.MAX_BULK_ITEMS]),
        matched=selectors.count_up_to(runs, selectors.MAX_BULK_ITEMS + 1),
        filter_query=_query(form),
        filter_text=describe_filter(form),
    )


def _query(form: RunFilterForm) -> str:
    data = form.data
    assert isinstance(data, QueryDict)  # built by _filter_form
    return data.urlencode()


def _bulk_out(action: BulkAction) -> dict[str, Any]:
    progress = selectors.bulk_progress(action=action)
    return {
        "id": action.id,
        "kind": action.kind,
        "state": action.state,
        "filter": action.filter_text,
        "matched": action.matched,
        "total": progress.total,
        "done": progress.done,
        "refused": progress.refused,
    }


@router.get(
    "/applications/{app_name}/bulk-actions/{action_id}",
    response={200: BulkOut, 403: Problem, 404: Problem, **COMMON_RESPONSES},
    summary="Follow a bulk action's progress",
)
def bulk_action(request: ApiRequest, app_name: str, action_id: int) -> Any:
    application = _application(request, app_name)
    action = selectors.bulk_action_for_user(user=request.auth, action_id=action_id)
    if action is None or action.application_id != application.name:
        raise HttpError(404, NO_SUCH_BULK_ACTION)
    bulk.bulk_action_resume_if_stalled(action=action)
    action.refresh_from_db()
    return _bulk_out(action)
