"""The Schedules tab: every schedule of an application (declared in code or added in the admin),
when each runs next in the viewer's zone, its last run, the runs due in the next 24 hours, and
Pause / Resume, each confirmed first. Run now is the task page's view
(``views.application_schedule_run_now``), for declared and admin-added schedules alike.
"""

from __future__ import annotations

import datetime
import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django_celery_beat.models import PeriodicTask

from lime_task import headers
from lime_task.config import tasks_config
from limepkg_task_starter import selectors
from limepkg_task_starter.models import Application
from limepkg_task_starter.permissions import PAUSE_SCHEDULE, START, VIEW_RUNS
from limepkg_task_starter.refusals import REFUSALS, refusal_messages
from limepkg_task_starter.schedule_summary import (
    UPCOMING_LIMIT,
    UPCOMING_WITHIN,
    ScheduleRow,
    periodic_headers,
    upcoming,
)
from limepkg_task_starter.services.schedules import schedule_pause, schedule_resume

PAUSED = "Paused {schedule}{until}. Its ticks are skipped until it is resumed."
PAUSED_UNTIL = " until {until}"
RESUMED = (
    "Resumed {schedule}. It runs from its next tick; the ticks missed while paused are not run."
)
NOT_PAUSED = "{schedule} was not paused."
UNTIL_UNREADABLE = "Type a date and time, for example 2026-12-24 18:00."
ZONE_UNKNOWN = "Unknown time zone {zone!r}."


def _application(request: HttpRequest, name: str) -> Application:
    application = selectors.application_for_user(user=request.user, name=name)
    if application is None:
        raise Http404("No such application")
    return application


def _schedule(application: Application, schedule_id: int) -> PeriodicTask:
    periodic = selectors.application_periodic_task(application=application, schedule_id=schedule_id)
    if periodic is None:
        raise Http404("No such schedule")
    return periodic


def _tab(application: Application, row_id: int | None = None) -> str:
    url = reverse("admin:task_starter:schedules", kwargs={"app_name": application.name})
    return f"{url}#schedule-{row_id}" if row_id is not None else url


@require_GET
def schedules(request: HttpRequest, app_name: str, *, site: AdminSite) -> HttpResponse:
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    application = _application(request, app_name)
    rows = selectors.application_schedules(application=application)
    due = upcoming(rows, now=timezone.now())
    return render(
        request,
        "task_starter/schedules.html",
        {
            **site.each_context(request),
            "title": f"Schedules of {application.name}",
            "application": application,
            "applications": selectors.applications_for_user(user=request.user),
            "is_nav_sidebar_enabled": False,  # a wide table, as on the runs page
            "rows": rows,
            "upcoming": due,
            "upcoming_limit": UPCOMING_LIMIT,
            "upcoming_hours": int(UPCOMING_WITHIN.total_seconds() // 3600),
            "upcoming_full": len(due) >= UPCOMING_LIMIT,
            "can_pause": request.user.has_perm(PAUSE_SCHEDULE),
            # Run now runs as the schedule's session user: the start policy decides on the click.
            "can_run_now": request.user.has_perm(START),
            "declared_held": not tasks_config().enable_scheduled_tasks,
        },
    )


def _confirm(
    request: HttpRequest,
    site: AdminSite,
    application: Application,
    row: ScheduleRow,
    *,
    action: str,
    until_error: str = "",
    status: int = 200,
) -> HttpResponse:
    """Pause or resume, asked first: what the schedule runs, and what the action does."""
    values = periodic_headers(row.periodic)
    return render(
        request,
        "task_starter/schedule_confirm.html",
        {
            **site.each_context(request),
            "title": f"{action.title()} this schedule?",
            "application": application,
            "row": row,
            "action_name": action,
            "items": [
                {
                    "task_name": row.task_name,
                    "arguments": _arguments(row.periodic),
                    "run_as": values.get(headers.USER) or "",
                }
            ],
            "action": reverse(
                f"admin:task_starter:schedule_{action}",
                kwargs={"app_name": application.name, "schedule_id": row.id},
            ),
            "confirm_label": f"{action.title()} the schedule",
            "next": _tab(application, row.id),
            "until": request.POST.get("until", ""),
            "zone": request.POST.get("zone", "UTC"),
            "until_error": until_error,
        },
        status=status,
    )


def _arguments(periodic: PeriodicTask) -> Any:
    try:
        return json.loads(periodic.args or "[]")
    except ValueError:
        return periodic.args


def _read_until(request: HttpRequest) -> tuple[datetime.datetime | None, str]:
    """The pause's end as typed (a local date and time) in the zone the page sent with it."""
    text = request.POST.get("until", "").strip()
    if not text:
        return None, ""
    zone_name = request.POST.get("zone", "").strip() or "UTC"
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return None, ZONE_UNKNOWN.format(zone=zone_name[:60])
    try:
        moment = datetime.datetime.fromisoformat(text.replace(" ", "T", 1))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return moment.astimezone(datetime.UTC), ""
    except (ValueError, OverflowError):
        return None, UNTIL_UNREADABLE


def _pausing(request: HttpRequest, app_name: str, schedule_id: int) -> tuple[Application, Any]:
    """Who may pause asks about a schedule of one of their applications; anyone else is told
    no before anything is read (another application's schedule: 404, as if missing)."""
    if not request.user.has_perm(PAUSE_SCHEDULE):
        raise PermissionDenied
    application = _application(request, app_name)
    return application, _schedule(application, schedule_id)


@require_http_methods(["GET", "POST"])
def pause(
    request: HttpRequest, app_name: str, schedule_id: int, *, site: AdminSite
) -> HttpResponse:
    application, periodic = _pausing(request, app_name, schedule_id)
    row = selectors.application_schedule(application=application, periodic=periodic)
    if request.method == "GET":
        return _confirm(request, site, application, row, action="pause")
    until, problem = _read_until(request)
    if problem:
        return _confirm(
            request, site, application, row, action="pause", until_error=problem, status=400
        )
    try:
        schedule_pause(
            actor=request.user, application=application.name, periodic_task=periodic, until=until
        )
    except REFUSALS as error:
        message = " ".join(refusal_messages(error))
        return _confirm(
            request, site, application, row, action="pause", until_error=message, status=400
        )
    ending = PAUSED_UNTIL.format(until=_said(until, request)) if until else ""
    messages.success(request, PAUSED.format(schedule=periodic.name, until=ending))
    return HttpResponseRedirect(_tab(application, periodic.pk))


def _said(moment: datetime.datetime, request: HttpRequest) -> str:
    """A time in a message, in the zone the person typed it in."""
    try:
        zone = ZoneInfo(request.POST.get("zone", "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


@require_http_methods(["GET", "POST"])
def resume(
    request: HttpRequest, app_name: str, schedule_id: int, *, site: AdminSite
) -> HttpResponse:
    application, periodic = _pausing(request, app_name, schedule_id)
    if request.method == "GET":
        return _confirm(
            request,
            site,
            application,
            selectors.application_schedule(application=application, periodic=periodic),
            action="resume",
        )
    if schedule_resume(actor=request.user, application=application.name, periodic_task=periodic):
        messages.success(request, RESUMED.format(schedule=periodic.name))
    else:
        messages.info(request, NOT_PAUSED.format(schedule=periodic.name))
    return HttpResponseRedirect(_tab(application, periodic.pk))
