"""The Task starter pages. Each view checks who may see what, then calls one selector or
service; the admin site wraps every view so only active staff reach them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_celery_beat.models import PeriodicTask
from django_htmx.http import HttpResponseStopPolling
from django_htmx.middleware import HtmxDetails

from lime_task import headers
from lime_task.config import tasks_config
from lime_task.exceptions import UnknownTaskError
from lime_task.registry import get_task, registered_tasks
from lime_task.routing import all_queue_names
from lime_task.status import Origin, State
from limepkg_task_starter import monitoring, selectors
from limepkg_task_starter.arguments import (
    ArgumentsError,
    TypedArguments,
    default_arguments,
    task_parameters,
)
from limepkg_task_starter.forms import RunFilterForm, StartForm
from limepkg_task_starter.models import Application, TaskRun
from limepkg_task_starter.permissions import (
    CANCEL,
    IMPERSONATE,
    PAUSE_QUEUE,
    START,
    VIEW_RUNS,
    VIEW_TRACEBACK,
)
from limepkg_task_starter.refusals import REFUSALS, refusal_messages, refusal_status
from limepkg_task_starter.schedule_summary import periodic_headers
from limepkg_task_starter.services import cancelling, retrying, starting
from limepkg_task_starter.stats import group_hours

TASKS_PER_PAGE = 100
CHART_WEEK_BIN_HOURS = 4  # 42 bars over 7 days: wide enough to read, fine enough for a burst
STARTED = "Started {task} as {user}."
VIEW_NEW_RUN = "View the run"
NOT_SENT = "{task} was not sent: {reason} It is recorded in the history."
CANCELLED = "Cancelled {task}."
RETRIED = "Started {count} run{plural} again:"
RETRIED_ALREADY = "{task} ({run}) was not started again: it was retried already, as {link}."
RETRY_REFUSED = "{task} ({run}) was not started again: {reason}"
NOTHING_SELECTED = "Select the runs to retry first."
NOT_FAILED = "only failed runs are retried, and it is {status}."
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
            # As on the runs page: the table takes the whole width.
            is_nav_sidebar_enabled=False,
            tasks=tasks,
            scheduled=selectors.scheduled_task_names(
                application=application, task_names=list(page.object_list)
            ),
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
    form: StartForm | None = None,
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
    if editor not in EDITORS or not parameters:
        editor = "json"
    if form is None:
        form = StartForm(parameters=parameters, values=prefill)
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
            form=form,
            editor=editor,
            arguments_text=arguments_text,
            errors=errors or [],
            runs=runs,
            any_open=any(not run.is_completed for run in runs),
            poll_every=_poll_every(runs),
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


def _chart_data(hours: list[tuple[datetime, Any]]) -> dict[str, dict[str, Any]]:
    """The task page's chart: the last 24 hours hour by hour, the last 7 days in bins of
    ``CHART_WEEK_BIN_HOURS``; per bin its outcomes and median duration."""

    def series(bins: list[tuple[datetime, Any]], hours_wide: int) -> dict[str, Any]:
        return {
            "width": hours_wide * 3600,
            "start": [int(start.timestamp()) for start, _ in bins],
            "succeeded": [outcomes.succeeded for _, outcomes in bins],
            "failed": [outcomes.failed for _, outcomes in bins],
            "p50": [outcomes.percentile(0.5) for _, outcomes in bins],
        }

    return {
        "day": series(hours[-24:], 1),
        "week": series(group_hours(hours, width=CHART_WEEK_BIN_HOURS), CHART_WEEK_BIN_HOURS),
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
    form: StartForm | None = None
    if request.POST.get("editor") == "form":
        form = StartForm(request.POST, parameters=task_parameters(get_task(task_name)))
        readable = form.is_valid()
        arguments = form.arguments()
        arguments_text = json.dumps(arguments, indent=2)
        if not readable and request.user.has_perm(START):  # a refusal of the start comes first
            return _task_page(
                request,
                site,
                application,
                task_name,
                arguments_text=arguments_text,
                status=HTTPStatus.BAD_REQUEST,
                editor="form",
                form=form,
            )
    else:
        arguments_text = request.POST.get("arguments", "")
        arguments = TypedArguments(arguments_text)
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
        return _refused(request, site, application, task_name, error, arguments_text, form=form)
    _announce(request, run)
    return HttpResponseRedirect(_at_row(request.path, run))


EDITORS = ("form", "json")


def _refused(
    request: HttpRequest,
    site: AdminSite,
    application: Application,
    task_name: str,
    error: Exception,
    arguments_text: str | None = None,
    form: StartForm | None = None,
) -> HttpResponse:
    """Every refused start, from any page: the task page again with what is wrong said above
    the form, or at the parameter it is about (and what was typed kept), answered with the
    refusal's status."""
    status = refusal_status(error)
    if status == HTTPStatus.NOT_FOUND or task_name not in registered_tasks():
        raise Http404(" ".join(refusal_messages(error)))
    messages_ = refusal_messages(error)
    if form is not None and isinstance(error, ArgumentsError):
        messages_ = form.refuse(error)  # said at the argument's own field, not again above
    return _task_page(
        request,
        site,
        application,
        task_name,
        arguments_text=arguments_text,
        errors=messages_,
        status=status,
        editor="form" if form is not None else "json",
        form=form,
    )


def _announce(request: HttpRequest, run: TaskRun) -> None:
    """Say how a start went, with a link to the new run."""
    task = run.task_name.rsplit(".", 1)[-1]
    link = format_html(
        ' <a href="{}" class="ts-new-run">{}</a>',
        reverse("admin:task_starter:run_info", kwargs={"run_id": run.id}),
        VIEW_NEW_RUN,
    )
    if run.sent:
        messages.success(
            request, format_html("{}{}", STARTED.format(task=task, user=run.run_as), link)
        )
    else:
        messages.error(
            request, format_html("{}{}", NOT_SENT.format(task=task, reason=run.reason), link)
        )


def _at_row(url: str, run: TaskRun) -> str:
    """A page that lists runs, scrolled to the row of ``run`` (highlighted by the page)."""
    return f"{url.split('#', 1)[0]}#run-{run.id}"


def _landing(request: HttpRequest, run: TaskRun, fallback: str) -> str:
    """Where a new run is shown after Run again or Run now: the page the action came from,
    at the new run's row; but the new run's own View info when it came from the old run's."""
    back = _back_to(request, fallback)
    if run.rerun_of_id is not None:
        old_info = reverse("admin:task_starter:run_info", kwargs={"run_id": run.rerun_of_id})
        if urlsplit(back).path == old_info:
            return reverse("admin:task_starter:run_info", kwargs={"run_id": run.id})
    return _at_row(back, run)


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
        "poll_every": _poll_every(runs),
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
    return HttpResponseRedirect(_landing(request, run, task_page))


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
            poll_every=_poll_every([run]),
            reruns=selectors.reruns_of(run=run),
            run_log=selectors.run_log_of(run=run),
            application=run.application,
            can_view_traceback=request.user.has_perm(VIEW_TRACEBACK),
            can_start=request.user.has_perm(START),
            can_cancel=request.user.has_perm(CANCEL),
        ),
    )


@require_http_methods(["GET", "POST"])
def schedule_run_now(request: HttpRequest, declaration_id: int, *, site: AdminSite) -> HttpResponse:
    """Run now on a schedule declared in code (the task page's)."""
    _may_use_task_starter(request)
    declaration = selectors.declaration_for_user(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No such schedule")
    return _run_now(
        request,
        site,
        declaration.application,
        declaration.periodic_task,
        action=reverse(
            "admin:task_starter:schedule_run_now", kwargs={"declaration_id": declaration.id}
        ),
    )


@require_http_methods(["GET", "POST"])
def application_schedule_run_now(
    request: HttpRequest, app_name: str, schedule_id: int, *, site: AdminSite
) -> HttpResponse:
    """Run now on any schedule of the application, declared in code or added in the admin
    (the Schedules tab's)."""
    _may_use_task_starter(request)
    application = selectors.application_for_user(user=request.user, name=app_name)
    if application is None:
        raise Http404("No such application")
    periodic = selectors.application_periodic_task(application=application, schedule_id=schedule_id)
    if periodic is None:
        raise Http404("No such schedule")
    return _run_now(
        request,
        site,
        application,
        periodic,
        action=reverse(
            "admin:task_starter:application_schedule_run_now",
            kwargs={"app_name": application.name, "schedule_id": periodic.pk},
        ),
    )


def _run_now(
    request: HttpRequest,
    site: AdminSite,
    application: Application,
    periodic: PeriodicTask,
    *,
    action: str,
) -> HttpResponse:
    """Asked first (what runs, with which arguments, as whom), then started through the start
    policy; what the policy refuses is said before the confirmation where it can be."""
    if request.method == "GET":
        if not request.user.has_perm(START):
            raise PermissionDenied
        try:
            starting.schedule_run_now_allowed(application=application, task_name=periodic.task)
            arguments = starting.schedule_arguments(periodic)
        except REFUSALS as error:
            return _refused(request, site, application, periodic.task, error)
        return _confirm(
            request,
            site,
            title="Run now?",
            question=f"Start “{periodic.name}” now, with its schedule's arguments and user?",
            runs=[],
            items=[
                {
                    "task_name": periodic.task,
                    "arguments": arguments,
                    "run_as": periodic_headers(periodic).get(headers.USER)
                    or request.user.get_username(),
                }
            ],
            action=action,
            confirm_label="Run now",
            application=application,
        )
    return _start_and_go_back(
        request,
        site,
        application,
        periodic.task,
        lambda: starting.schedule_run_now(
            actor=request.user, application=application, periodic=periodic
        ),
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
    destructive: bool = False,
) -> HttpResponse:
    """Before an action that starts or stops work: what it acts on, and one button to go on
    (red when it stops work)."""
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
            destructive=destructive,
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
            destructive=True,
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
    selected = selectors.runs_by_ids(application=application, run_ids=ids)
    if not selected:
        raise Http404("No such runs")
    # Only a failed run is retried: one that succeeded, waits or runs would run twice.
    runs = [run for run in selected if run.status == State.FAILURE]
    for run in selected:
        if run.status != State.FAILURE:
            messages.error(
                request,
                RETRY_REFUSED.format(
                    task=run.task_name.rsplit(".", 1)[-1],
                    run=run.id,
                    reason=NOT_FAILED.format(status=run.get_status_display()),
                ),
            )
    if not runs:
        return HttpResponseRedirect(back)
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
    started: list[TaskRun] = []
    for run in runs:
        if run.retried_as:  # type: ignore[attr-defined]  # selectors.with_retry
            messages.warning(request, _retried_already(run))
            continue
        try:
            started.append(retrying.run_retry(actor=request.user, run=run))
        except REFUSALS as error:
            messages.error(
                request,
                RETRY_REFUSED.format(
                    task=run.task_name.rsplit(".", 1)[-1],
                    run=run.id,
                    reason=" ".join(refusal_messages(error)),
                ),
            )
    if not started:
        return HttpResponseRedirect(back)
    count = len(started)
    links = format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        (
            (reverse("admin:task_starter:run_info", kwargs={"run_id": new.id}), new.id[:8])
            for new in started
        ),
    )
    messages.success(
        request, format_html("{} {}", RETRIED.format(count=count, plural=_plural(count)), links)
    )
    return HttpResponseRedirect(_at_row(back, started[0]))


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _retried_already(run: TaskRun) -> str:
    new = run.retried_as  # type: ignore[attr-defined]  # selectors.with_retry
    return format_html(
        RETRIED_ALREADY,
        task=run.task_name.rsplit(".", 1)[-1],
        run=run.id[:8],
        link=format_html(
            '<a href="{}">{}</a>',
            reverse("admin:task_starter:run_info", kwargs={"run_id": new}),
            new[:8],
        ),
    )


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
    search_start = selectors.text_search_start(
        application=application, filters=filters, before=before
    )
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
        "counts": selectors.run_counts(application=application, search=filters.search),
        "search_start": search_start,
        "bulk_recent": selectors.bulk_actions_recent(application=application),
        "export_cap": f"{selectors.MAX_EXPORT_ROWS:,}",
        "search_runs": f"{selectors.TEXT_SEARCH_RUNS:,}",
        # A text search that reads its full share of runs is followed at a slower pace.
        "poll_every": _poll_every(runs, usual=TEXT_SEARCH_POLL if search_start else "1s"),
        "can_start": request.user.has_perm(START),
        "can_cancel": request.user.has_perm(CANCEL),
        "here": request.get_full_path(),
        "queue_pauses": list(selectors.queue_pauses().values()),
    }


# Right after a start, pages poll quickly, so a short run's outcome shows within half a second of
# the click; runs open for longer are followed at the usual pace (one request at a time, always).
QUICK_POLL = "250ms"
QUICK_POLL_FOR = timedelta(seconds=10)
TEXT_SEARCH_POLL = "5s"


def _poll_every(runs: Iterable[TaskRun], *, usual: str = "1s") -> str:
    recent = timezone.now() - QUICK_POLL_FOR
    started_now = any(not run.is_completed and run.created_at >= recent for run in runs)
    return QUICK_POLL if started_now else usual


def _before(value: str) -> datetime | None:
    """Where an older page starts; a value that is not a time the database can hold (in UTC,
    between the years 1 and 9999) starts at the newest."""
    try:
        moment = parse_datetime(value) if value else None
        if moment is not None and moment.tzinfo is not None:
            moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return moment


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
            # Counted when the page loads, not on every poll (a search would be read again).
            bulk=selectors.bulk_overview(
                application=context["application"], filters=context["filters"]
            ),
            **context,
        ),
    )


@require_GET
def runs_live(request: HttpRequest, app_name: str, *, site: AdminSite) -> HttpResponse:
    """The runs page's counts and table, polled as one (every second, quicker after a start)."""
    context = _runs_context(request, app_name)
    context["here"] = request.headers.get("HX-Current-URL") or reverse(
        "admin:task_starter:runs", kwargs={"app_name": app_name}
    )
    return render(request, "task_starter/runs.html#runs-live", context)


# --- Workers and queues -----------------------------------------------------------------------


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


@require_GET
def workers(request: HtmxHttpRequest, *, site: AdminSite) -> HttpResponse:
    """The task handlers that marked themselves alive, and each configured queue's backlog.

    Handlers serve every application, but the page keeps the tabs of the application it was
    opened from (``?application=``, else the viewer's first); polled, it answers its live part.
    """
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    applications = selectors.applications_for_user(user=request.user)
    name = request.GET.get("application")
    application = _application(request, name) if name else applications.first()
    config = tasks_config()
    handlers = selectors.workers_overview(
        user=request.user, worker_lost_after=config.worker_lost_after
    )
    alive = sum(1 for handler in handlers if handler.alive)
    handlers = selectors.workers_with_replies(handlers, monitoring.worker_replies(expected=alive))
    names = all_queue_names(config)
    queues = selectors.queues_overview(
        user=request.user, names=names, depths=monitoring.queue_depths(names), handlers=handlers
    )
    template = "task_starter/workers.html"
    return render(
        request,
        f"{template}#workers-live" if request.htmx else template,
        _admin_context(
            site,
            request,
            title="Task handlers and queues",
            application=application,
            applications=applications,
            handlers=handlers,
            queues=queues,
            can_ask=monitoring.can_broadcast(),
            can_pause=request.user.has_perm(PAUSE_QUEUE),
            paused_queues=[queue.paused for queue in queues if queue.paused],
            no_broadcast=monitoring.NO_BROADCAST,
            worker_lost_after=config.worker_lost_after,
        ),
    )
