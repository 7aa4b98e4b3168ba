"""The Task starter pages. Each view checks who may see what, then calls one selector or
service; the admin site wraps every view so only active staff reach them."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseStopPolling

from lime_task.exceptions import InvalidArgumentsError, NotFoundError, UnknownTaskError
from lime_task.registry import get_task
from limepkg_task_starter import selectors, services
from limepkg_task_starter.arguments import ArgumentsError, default_arguments, task_parameters
from limepkg_task_starter.models import Application, TaskRun

VIEW_RUNS = "limepkg_task_starter.view_taskrun"
START = "limepkg_task_starter.start_task"
IMPERSONATE = "limepkg_task_starter.start_task_as_impersonation_user"
VIEW_TRACEBACK = "limepkg_task_starter.view_traceback"
TASKS_PER_PAGE = 100
STARTED = "Started {task} as {user}."
NOT_SENT = "{task} was not sent: {reason} It is recorded in the history."


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
            can_view_runs=request.user.has_perm(VIEW_RUNS),
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
) -> HttpResponse:
    task = get_task(task_name)
    can_view_runs = request.user.has_perm(VIEW_RUNS)
    runs = (
        selectors.history_runs(application=application, task_name=task_name)
        if can_view_runs
        else []
    )
    if arguments_text is None:
        last = next((run.arguments for run in runs if run.arguments is not None), None)
        arguments_text = json.dumps(last if last is not None else default_arguments(task), indent=2)
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
            parameters=task_parameters(task),
            arguments_text=arguments_text,
            errors=errors or [],
            runs=runs,
            can_start=request.user.has_perm(START),
            can_view_runs=can_view_runs,
            impersonate_user=impersonate if request.user.has_perm(IMPERSONATE) else "",
            schedules=selectors.schedules_for_task(application=application, task_name=task_name),
        ),
        status=status,
    )


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

    arguments_text = request.POST.get("arguments", "")
    try:
        run = services.run_start(
            user=request.user,
            application=application,
            task_name=task_name,
            arguments_json=arguments_text,
            as_impersonation=request.POST.get("run_as") == "impersonation",
        )
    except ArgumentsError as error:
        return _task_page(
            request,
            site,
            application,
            task_name,
            arguments_text=arguments_text,
            errors=error.messages,
            status=400,
        )
    except InvalidArgumentsError as error:
        return _task_page(
            request,
            site,
            application,
            task_name,
            arguments_text=arguments_text,
            errors=[str(error)],
            status=400,
        )
    except services.StartRefusedError as error:
        return _task_page(
            request,
            site,
            application,
            task_name,
            arguments_text=arguments_text,
            errors=[str(error)],
            status=403,
        )
    _announce(request, run)
    return HttpResponseRedirect(request.path)


def _announce(request: HttpRequest, run: TaskRun) -> None:
    task = run.task_name.rsplit(".", 1)[-1]
    if run.sent:
        messages.success(request, STARTED.format(task=task, user=run.run_as))
    else:
        messages.error(request, NOT_SENT.format(task=task, reason=run.reason))


@require_GET
def run_row(request: HttpRequest, run_id: str, *, site: AdminSite) -> HttpResponse:
    run = _run(request, run_id)
    context = {"run": run, "can_start": request.user.has_perm(START)}
    response_class = HttpResponseStopPolling if run.is_completed else HttpResponse
    response = render(request, "task_starter/task_detail.html#run-row", context)
    return response_class(response.content)


def _start_and_go_back(
    request: HttpRequest, app_name: str, task_name: str, start: Callable[[], TaskRun], what: str
) -> HttpResponse:
    """Start a run, say how it went in a message, and return to the task page."""
    back = reverse(
        "admin:task_starter:task_detail", kwargs={"app_name": app_name, "task_name": task_name}
    )
    try:
        _announce(request, start())
    except services.StartRefusedError as error:
        messages.error(request, str(error))
    except (ArgumentsError, InvalidArgumentsError, NotFoundError, UnknownTaskError) as error:
        messages.error(request, f"Could not {what}: {error}")
    return HttpResponseRedirect(back)


@require_POST
def run_rerun(request: HttpRequest, run_id: str, *, site: AdminSite) -> HttpResponse:
    run = _run(request, run_id)
    if not request.user.has_perm(START):
        raise PermissionDenied
    return _start_and_go_back(
        request,
        run.application_id,
        run.task_name,
        lambda: services.run_rerun(user=request.user, run=run),
        "run again",
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
        ),
    )


@require_POST
def schedule_run_now(request: HttpRequest, declaration_id: int, *, site: AdminSite) -> HttpResponse:
    declaration = selectors.declaration_for_user(user=request.user, declaration_id=declaration_id)
    if declaration is None:
        raise Http404("No such schedule")
    if not request.user.has_perm(START):
        raise PermissionDenied
    return _start_and_go_back(
        request,
        declaration.application_id,
        declaration.task_name,
        lambda: services.schedule_run_now(user=request.user, declaration=declaration),
        "run now",
    )
