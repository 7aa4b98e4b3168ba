"""The Task starter pages. Each view checks who may see what, then calls one selector or
service; the admin site wraps every view so only active staff reach them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from lime_task import headers
from lime_task.config import tasks_config
from lime_task.exceptions import UnknownTaskError
from lime_task.registry import get_task, registered_tasks
from lime_task.routing import all_queue_names
from lime_task.status import Origin
from limepkg_task_starter import monitoring, selectors
from limepkg_task_starter.arguments import (
    FIELD_PREFIX,
    ArgumentsError,
    Parameter,
    TypedArguments,
    default_arguments,
    form_arguments,
    task_parameters,
)
from limepkg_task_starter.forms import RunFilterForm
from limepkg_task_starter.models import Application, TaskRun
from limepkg_task_starter.permissions import CANCEL, IMPERSONATE, START, VIEW_RUNS, VIEW_TRACEBACK
from limepkg_task_starter.refusals import REFUSALS, refusal_messages, refusal_status
from limepkg_task_starter.services import cancelling, starting

TASKS_PER_PAGE = 100
STARTED = "Started {task} as {user}."
NOT_SENT = "{task} was not sent: {reason} It is recorded in the history."
CANCELLED = "Cancelled {task}."
RETRIED = "Started {count} run{plural} again."
RETRY_REFUSED = "{task} ({run}) was not started again: {reason}"
NOTHING_SELECTED = "Select the runs to retry first."
MAX_RETRY = 100
TOO_MANY_SELECTED = f"Retry at most {MAX_RETRY} runs at a time."


def _admin_context(site: AdminSite, request: HttpRequest, **context: Any) -> dict[str, Any]:
    return {**site.each_context(request), **context}


def _may_use_task_starter(request: HttpRequest) -> None:
    if not (request.user.has_perm(VIEW_RUNS) or request.user.has_perm(START)):
        raise PermissionDenied


def _application(request: HttpRequest, name: str) -> Application:
    application = selectors.application_for_user(user=request.user, name=name)
    if application is None:
        raise Http404("No such application")
    return application


def _run(request: HttpRequest, run_id: str) -> TaskRun:
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    run = selectors.run_for_user(user=request.user, run_id=run_id)
    if run is None:
        raise Http404("No such run")
    return run


@require_GET
def index(request: HttpRequest, *, site: AdminSite) -> HttpResponse:
    _may_use_task_starter(request)
    first = selectors.applications_for_user(user=request.user).first()
    if first is not None:
        return redirect("admin:task_starter:task_list", app_name=first.name)
    return render(
        request,
        "task_starter/no_applications.html",
        _admin_context(site, request, title="Task starter"),
    )


@require_GET
def task_list(request: HttpRequest, app_name: str, *, site: AdminSite) -> HttpResponse:
    _may_use_task_starter(request)
    application = _application(request, app_name)
    search = request.GET.get("q", "").strip()
    names = selectors.exposed_task_names(application=application, search=search)
    page = Paginator(names, TASKS_PER_PAGE).get_page(request.GET.get("p"))
    tasks = selectors.task_summaries(application=application, task_names=list(page.object_list))
    can_view_runs = request.user.has_perm(VIEW_RUNS)
    stats = (
        selectors.task_stats(
            application=application, task_names=list(page.object_list), day_durations=False
        )
        if can_view_runs
        else {}
    )
    return render(
        request,
        "task_starter/task_list.html",
        _admin_context(
            site,
            request,
            title="Task starter",
            application=application,
            applications=selectors.applications_for_user(user=request.user),
            tasks=tasks,
            page=page,
            search=search,
            total=len(names),
            can_view_runs=can_view_runs,
            stats=stats,
            # One reverse() for the page instead of one per task: task names need no quoting.
            task_url_prefix=reverse(
                "admin:task_starter:task_detail", kwargs={"app_name": app_name, "task_name": "-"}
            ).removesuffix("-/"),
        ),
    )


def _task_page(
    request: HttpRequest,
    site: AdminSite,
    application: Application,
    task_name: str,
    *,
    arguments_text: str | None = None,
    errors: list[str] | None = None,
    status: int = 200,
    editor: str | None = None,
    form_values: dict[str, Any] | None = None,
    field_errors: dict[str, str] | None = None,
) -> HttpResponse:
    task = get_task(task_name)
    can_view_runs = request.user.has_perm(VIEW_RUNS)
    runs = (
        selectors.history_runs(application=application, task_name=task_name)
        if can_view_runs
        else []
    )
    last = next((run.arguments for run in runs if run.arguments is not None), None)
    prefill = last if isinstance(last, dict) else default_arguments(task)
    if arguments_text is None:
        arguments_text = json.dumps(last if last is not None else prefill, indent=2)
    # One read of the task's hours serves its chart and its 24 h / 7 d figures.
    hours = (
        selectors.task_hours(application=application, task_name=task_name) if can_view_runs else []
    )
    stats = selectors.stats_of_hours(hours) if can_view_runs else None
    parameters = task_parameters(task)
    editor = editor or request.GET.get("editor") or ("form" if parameters else "json")
    if editor not in EDITORS:
        editor = "json"
    field_errors = field_errors or {}
    fields = [
        ParameterField(
            parameter=parameter,
            value=_shown_value(
                parameter,
                form_values[parameter.name]
                if form_values is not None and parameter.name in form_values
                else prefill.get(parameter.name, parameter.default),
                typed=form_values is not None and parameter.name in form_values,
            ),
            error=field_errors.get(parameter.name, ""),
        )
        for parameter in parameters
    ]
    impersonate = application.impersonate_user
    return render(
        request,
        "task_starter/task_detail.html",
        _admin_context(
            site,
            request,
            title=task_name.rsplit(".", 1)[-1],
            application=application,
            task_name=task_name,
            description=(inspect.getdoc(task.run) or "").strip(),
            parameters=parameters,
            fields=fields,
            editor=editor,
            arguments_text=arguments_text,
            errors=errors or [],
            runs=runs,
            any_open=any(not run.is_completed for run in runs),
            can_start=request.user.has_perm(START),
            can_cancel=request.user.has_perm(CANCEL),
            can_view_runs=can_view_runs,
            impersonate_user=impersonate if request.user.has_perm(IMPERSONATE) else "",
            schedules=selectors.schedules_for_task(application=application, task_name=task_name),
            stats=stats,
            chart=_chart_data(hours) if stats and stats.week.finished else None,
        ),
        status=status,
    )


def _chart_data(hours: list[tuple[datetime, Any]]) -> dict[str, list[Any]]:
    """The task page's chart, hour by hour over the last 7 days: outcomes and the median."""
    return {
        "hours": [int(hour.timestamp()) for hour, _ in hours],
        "succeeded": [outcomes.succeeded for _, outcomes in hours],
        "failed": [outcomes.failed for _, outcomes in hours],
        "p50": [outcomes.percentile(0.5) for _, outcomes in hours],
    }


@require_http_methods(["GET", "POST"])
def task_detail(
    request: HttpRequest, app_name: str, task_name: str, *, site: AdminSite
) -> HttpResponse:
    _may_use_task_starter(request)
    application = _application(request, app_name)
    if task_name not in application.exposed_tasks:
        raise Http404("Not a task of this application")
    try:
        get_task(task_name)
    except UnknownTaskError as error:
        raise Http404(str(error)) from error
    if request.method == "GET":
        return _task_page(request, site, application, task_name)

    impersonate = request.POST.get("run_as") == starting.RunAs.IMPERSONATION_USER
    arguments: Any
    if request.POST.get("editor") == "form":
        task = get_task(task_name)
        arguments, unreadable = form_arguments(task, request.POST)
        posted = {
            parameter.name: request.POST.get(FIELD_PREFIX + parameter.name, "")
            for parameter in task_parameters(task)
        }
        arguments_text = json.dumps(arguments, indent=2)
        if unreadable and request.user.has_perm(START):  # a refusal of the start comes first
            return _task_page(
                request,
                site,
                application,
                task_name,
                arguments_text=arguments_text,
                errors=[],
                status=HTTPStatus.BAD_REQUEST,
                editor="form",
                form_values=posted,
                field_errors=unreadable,
            )
    else:
        arguments_text = request.POST.get("arguments", "")
        arguments = TypedArguments(arguments_text)
        posted = None
    try:
        run = starting.run_start(
            actor=request.user,
            application=application,
            task_name=task_name,
            arguments=arguments,
            run_as=starting.RunAs.IMPERSONATION_USER if impersonate else starting.RunAs.ACTOR,
            origin=Origin.PAGE,
        )
    except REFUSALS as error:
        return _refused(
            request, site, application, task_name, error, arguments_text, form_values=posted
        )
    _announce(request, run)
    return HttpResponseRedirect(request.path)


EDITORS = ("form", "json")


@dataclass(frozen=True)
class ParameterField:
    """One input of the parameter form: the parameter, what the input shows, its error."""

    parameter: Parameter
    value: Any
    error: str = ""

    @property
    def input_id(self) -> str:
        return FIELD_PREFIX + self.parameter.name


def _shown_value(parameter: Parameter, value: Any, *, typed: bool) -> Any:
    """What an input shows: as typed after a refusal, else the value in the input's terms."""
    if typed or parameter.kind in ("number", "text"):
        return "" if value is None else value
    if parameter.kind == "checkbox":
        return bool(value) if not isinstance(value, str) else value == "on"
    return "" if value is None and parameter.required else json.dumps(value)


def _refused(
    request: HttpRequest,
    site: AdminSite,
    application: Application,
    task_name: str,
    error: Exception,
    arguments_text: str | None = None,
    form_values: dict[str, Any] | None = None,
) -> HttpResponse:
    """Every refused start, from any page: the task page again with what is wrong said above
    the form, or at the parameter it is about (and what was typed kept), answered with the
    refusal's status."""
    status = refusal_status(error)
    if status == HTTPStatus.NOT_FOUND or task_name not in registered_tasks():
        raise Http404(" ".join(refusal_messages(error)))
    messages_ = refusal_messages(error)
    field_errors: dict[str, str] = {}
    if form_values is not None and isinstance(error, ArgumentsError):
        # Said at the argument's own field, not again above the form.
        field_errors = {
            name: text for name, text in error.by_argument.items() if name in form_values
        }
        messages_ = [text for text in messages_ if text not in field_errors.values()]
    return _task_page(
        request,
        site,
        application,
        task_name,
        arguments_text=arguments_text,
        errors=messages_,
        status=status,
        editor="form" if form_values is not None else "json",
        form_values=form_values,
        field_errors=field_errors,
    )


def _announce(request: HttpRequest, run: TaskRun) -> None:
    task = run.task_name.rsplit(".", 1)[-1]
    if run.sent:
        messages.success(request, STARTED.format(task=task, user=run.run_as))
    else:
        messages.error(request, NOT_SENT.format(task=task, reason=run.reason))


@require_GET
def task_history(
    request: HttpRequest, app_name: str, task_name: str, *, site: AdminSite
) -> HttpResponse:
    """The history table's rows, polled as one while any of them is open."""
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    application = _application(request, app_name)
    if task_name not in application.exposed_tasks:
        raise Http404("Not a task of this application")
    runs = selectors.history_runs(application=application, task_name=task_name)
    any_open = any(not run.is_completed for run in runs)
    context = {
        "runs": runs,
        "any_open": any_open,
        "application": application,
        "task_name": task_name,
        "can_start": request.user.has_perm(START),
        "can_cancel": request.user.has_perm(CANCEL),
    }
    response = render(request, "task_starter/task_detail.html#history-rows", context)
    return response if any_open else HttpResponseStopPolling(response.content)


@require_GET
def run_row(request: HttpRequest, run_id: str, *, site: AdminSite) -> HttpResponse:
    run = _run(request, run_id)
    context = {
        "run": run,
        "can_start": request.user.has_perm(START),
        "can_cancel": request.user.has_perm(CANCEL),
    }
    response_class = HttpResponseStopPolling if run.is_completed else HttpResponse
    response = render(request, "task_starter/task_detail.html#run-row", context)
    return response_class(response.content)


def _start_and_go_back(
    request: HttpRequest,
    site: AdminSite,
    application: Application,
    task_name: str,
    start: Callable[[], TaskRun],
) -> HttpResponse:
    """Start a run, say how it went in a message, and return to the task page."""
    try:
        run = start()
    except REFUSALS as error:
        return _refused(request, site, application, task_name, error)
    _announce(request, run)
    task_page = reverse(
        "admin:task_starter:task_detail",
        kwargs={"app_name": application.name, "task_name": task_name},
    )
    return HttpResponseRedirect(_back_to(request, task_page))


@require_http_methods(["GET", "POST"])
def run_rerun(request: HttpRequest, run_id: str, *, site: AdminSite) -> HttpResponse:
    run = _run(request, run_id)
    if request.method == "GET":
        if not request.user.has_perm(START):
            raise PermissionDenied
        return _confirm(
            request,
            site,
            title="Run again?",
            question="Start this task again, with the same arguments, as the same user?",
            runs=[run],
            action=reverse("admin:task_starter:run_rerun", kwargs={"run_id": run.id}),
            confirm_label="Run again",
            application=run.application,
        )
    return _start_and_go_back(
        request,
        site,
        run.application,
        run.task_name,
        lambda: starting.run_rerun(actor=request.user, run=run),
    )


@require_GET
def run_info(request: HttpRequest, run_id: str, *, site: AdminSite) -> HttpResponse:
    run = _run(request, run_id)
    return render(
        request,
        "task_starter/run_info.html",
        _admin_context(
            site,
            request,
            title=f"Run {run.id}",
            task_title=run.task_name.rsplit(".", 1)[-1],
            run=run,
            application=run.application,
            can_view_traceback=request.user.has_perm(VIEW_TRACEBACK),
            can_start=request.user.has_perm(START),
            can_cancel=request.user.has_perm(CANCEL),
        ),
    )


@require_http_methods(["GET", "POST"])
def schedule_run_now(request: HttpRequest, declaration_id: int, *, site: AdminSite) -> HttpResponse:
    _may_use_task_starter(request)
    declaration = selectors.declaration_for_user(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No such schedule")
    if request.method == "GET":
        if not request.user.has_perm(START):
            raise PermissionDenied
        periodic = declaration.periodic_task
        return _confirm(
            request,
            site,
            title="Run now?",
            question=f"Start “{periodic.name}” now, with its schedule's arguments and user?",
            runs=[],
            items=[
                {
                    "task_name": declaration.task_name,
                    "arguments": json.loads(periodic.args or "[]"),
                    "run_as": json.loads(periodic.headers or "{}").get(headers.USER)
                    or request.user.get_username(),
                }
            ],
            action=reverse(
                "admin:task_starter:schedule_run_now", kwargs={"declaration_id": declaration.id}
            ),
            confirm_label="Run now",
            application=declaration.application,
        )
    return _start_and_go_back(
        request,
        site,
        declaration.application,
        declaration.task_name,
        lambda: starting.schedule_run_now(actor=request.user, declaration=declaration),
    )


# --- Confirmations ----------------------------------------------------------------------------


def _back_to(request: HttpRequest, fallback: str) -> str:
    """Where to return after an action: the page it came from, if it is one of ours."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _confirm(
    request: HttpRequest,
    site: AdminSite,
    *,
    title: str,
    question: str,
    runs: list[TaskRun],
    action: str,
    confirm_label: str,
    application: Application,
    items: list[dict[str, Any]] | None = None,
    status: int = 200,
) -> HttpResponse:
    """Before an action that starts or stops work: what it acts on, and one button to go on."""
    listed = items or [
        {
            "task_name": run.task_name,
            "arguments": run.arguments if run.arguments is not None else run.kwargs or run.args,
            "run_as": run.run_as,
            "status": run.status,
            "id": run.id,
        }
        for run in runs
    ]
    fallback = reverse("admin:task_starter:runs", kwargs={"app_name": application.name})
    return render(
        request,
        "task_starter/confirm.html",
        _admin_context(
            site,
            request,
            title=title,
            question=question,
            items=listed,
            run_ids=[run.id for run in runs],
            action=action,
            confirm_label=confirm_label,
            application=application,
            next=_back_to(request, fallback),
        ),
        status=status,
    )


# --- Cancel and retry -----------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def run_cancel(request: HttpRequest, run_id: str, *, site: AdminSite) -> HttpResponse:
    run = _run(request, run_id)
    if not request.user.has_perm(CANCEL):
        raise PermissionDenied
    back = _back_to(request, reverse("admin:task_starter:run_info", kwargs={"run_id": run.id}))
    if request.method == "GET":
        return _confirm(
            request,
            site,
            title="Cancel this run?",
            question=cancelling.run_cancel_outlook(run=run),
            runs=[run],
            action=reverse("admin:task_starter:run_cancel", kwargs={"run_id": run.id}),
            confirm_label="Cancel the run",
            application=run.application,
        )
    try:
        cancelling.run_cancel(actor=request.user, run=run)
    except REFUSALS as error:
        messages.error(request, " ".join(refusal_messages(error)))
        return HttpResponseRedirect(back)
    messages.success(request, CANCELLED.format(task=run.task_name.rsplit(".", 1)[-1]))
    return HttpResponseRedirect(back)


@require_POST
def runs_retry(request: HttpRequest, app_name: str, *, site: AdminSite) -> HttpResponse:
    """Run the selected runs again, each through the start policy, after a confirmation."""
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    application = _application(request, app_name)
    back = _back_to(request, reverse("admin:task_starter:runs", kwargs={"app_name": app_name}))
    ids = list(dict.fromkeys(request.POST.getlist("run")))
    if not ids:
        messages.error(request, NOTHING_SELECTED)
        return HttpResponseRedirect(back)
    if len(ids) > MAX_RETRY:
        messages.error(request, TOO_MANY_SELECTED)
        return HttpResponseRedirect(back)
    runs = selectors.runs_by_ids(application=application, run_ids=ids)
    if not runs:
        raise Http404("No such runs")
    if request.POST.get("confirm") != "yes":
        count = len(runs)
        return _confirm(
            request,
            site,
            title=f"Retry {count} run{'s' if count != 1 else ''}?",
            question="Start each of these again, with its arguments, as the same user?",
            runs=runs,
            action=reverse("admin:task_starter:runs_retry", kwargs={"app_name": app_name}),
            confirm_label=f"Retry {count} run{'s' if count != 1 else ''}",
            application=application,
        )
    started = 0
    for run in runs:
        try:
            starting.run_rerun(actor=request.user, run=run)
        except REFUSALS as error:
            messages.error(
                request,
                RETRY_REFUSED.format(
                    task=run.task_name.rsplit(".", 1)[-1],
                    run=run.id,
                    reason=" ".join(refusal_messages(error)),
                ),
            )
        else:
            started += 1
    if started:
        messages.success(request, RETRIED.format(count=started, plural="s" if started != 1 else ""))
    return HttpResponseRedirect(back)


# --- The runs page ----------------------------------------------------------------------------


def _runs_context(request: HttpRequest, app_name: str) -> dict[str, Any]:
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    application = _application(request, app_name)
    form = RunFilterForm(
        request.GET or None, task_names=selectors.run_task_names(application=application)
    )
    filters = form.filters()
    before = _before(request.GET.get("before", ""))
    runs, older = selectors.runs_page(application=application, filters=filters, before=before)
    query = request.GET.copy()
    query.pop("before", None)
    return {
        "application": application,
        "form": form,
        "filters": filters,
        "runs": runs,
        "older": older.isoformat() if older else "",
        "paged": before is not None,
        "query": query.urlencode(),
        "counts": selectors.run_counts(application=application),
        "can_start": request.user.has_perm(START),
        "can_cancel": request.user.has_perm(CANCEL),
        "here": request.get_full_path(),
    }


def _before(value: str) -> datetime | None:
    """Where an older page starts; a value that is not a time starts at the newest."""
    try:
        return parse_datetime(value) if value else None
    except ValueError:
        return None


@require_GET
def runs(request: HttpRequest, app_name: str, *, site: AdminSite) -> HttpResponse:
    context = _runs_context(request, app_name)
    return render(
        request,
        "task_starter/runs.html",
        _admin_context(
            site,
            request,
            title=f"Runs of {app_name}",
            applications=selectors.applications_for_user(user=request.user),
            # A wide table: the page takes the whole width (the tabs lead back to the tasks).
            is_nav_sidebar_enabled=False,
            **context,
        ),
    )


@require_GET
def runs_live(request: HttpRequest, app_name: str, *, site: AdminSite) -> HttpResponse:
    """The runs page's counts and table, polled as one every two seconds."""
    context = _runs_context(request, app_name)
    context["here"] = request.headers.get("HX-Current-URL") or reverse(
        "admin:task_starter:runs", kwargs={"app_name": app_name}
    )
    return render(request, "task_starter/runs.html#runs-live", context)


# --- Workers and queues -----------------------------------------------------------------------


@require_GET
def workers(request: HttpRequest, *, site: AdminSite) -> HttpResponse:
    """The task handlers that marked themselves alive, and each configured queue's backlog."""
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    config = tasks_config()
    handlers = selectors.workers_overview(
        user=request.user, worker_lost_after=config.worker_lost_after
    )
    alive = sum(1 for handler in handlers if handler.alive)
    handlers = selectors.workers_with_replies(handlers, monitoring.worker_replies(expected=alive))
    names = all_queue_names(config)
    return render(
        request,
        "task_starter/workers.html",
        _admin_context(
            site,
            request,
            title="Task handlers and queues",
            handlers=handlers,
            queues=selectors.queues_overview(names=names, depths=monitoring.queue_depths(names)),
            can_ask=monitoring.can_broadcast(),
            no_broadcast=monitoring.NO_BROADCAST,
            worker_lost_after=config.worker_lost_after,
        ),
    )
