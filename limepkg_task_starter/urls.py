from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib.admin import AdminSite
from django.urls import URLPattern, path

from limepkg_task_starter import views
from limepkg_task_starter.models import BulkActionKind
from limepkg_task_starter.pages import bulk, queues, runs_export, schedules


def task_starter_urls(site: AdminSite) -> list[URLPattern]:
    """The Task starter's pages, each behind the admin site's login and staff check."""

    def page(view: Callable[..., Any]) -> Callable[..., Any]:
        return site.admin_view(partial(view, site=site))

    return [
        path("", page(views.index), name="index"),
        path("workers/", page(views.workers), name="workers"),
        path("workers/queues/<str:queue>/pause/", page(queues.queue_pause), name="queue_pause"),
        path("workers/queues/<str:queue>/resume/", page(queues.queue_resume), name="queue_resume"),
        # Before runs/<run_id>/: an application may be called "runs".
        path("<slug:app_name>/runs/", page(views.runs), name="runs"),
        path("<slug:app_name>/runs/live/", page(views.runs_live), name="runs_live"),
        path("<slug:app_name>/runs/retry/", page(views.runs_retry), name="runs_retry"),
        path(
            "<slug:app_name>/runs/retry-all/",
            page(partial(bulk.runs_bulk, kind=BulkActionKind.RETRY)),
            name="runs_retry_all",
        ),
        path(
            "<slug:app_name>/runs/cancel-all/",
            page(partial(bulk.runs_bulk, kind=BulkActionKind.CANCEL)),
            name="runs_cancel_all",
        ),
        path(
            "<slug:app_name>/runs/bulk/<int:action_id>/",
            page(bulk.bulk_action),
            name="bulk_action",
        ),
        path("<slug:app_name>/runs/export.csv", page(runs_export.runs_export), name="runs_export"),
        path("<slug:app_name>/schedules/", page(schedules.schedules), name="schedules"),
        path(
            "<slug:app_name>/schedules/<int:schedule_id>/pause/",
            page(schedules.pause),
            name="schedule_pause",
        ),
        path(
            "<slug:app_name>/schedules/<int:schedule_id>/resume/",
            page(schedules.resume),
            name="schedule_resume",
        ),
        path(
            "<slug:app_name>/schedules/<int:schedule_id>/run-now/",
            page(views.application_schedule_run_now),
            name="application_schedule_run_now",
        ),
        path("runs/<str:run_id>/", page(views.run_info), name="run_info"),
        path("runs/<str:run_id>/row/", page(views.run_row), name="run_row"),
        path("runs/<str:run_id>/rerun/", page(views.run_rerun), name="run_rerun"),
        path("runs/<str:run_id>/cancel/", page(views.run_cancel), name="run_cancel"),
        path(
            "schedules/<int:declaration_id>/run-now/",
            page(views.schedule_run_now),
            name="schedule_run_now",
        ),
        path("<slug:app_name>/", page(views.task_list), name="task_list"),
        path("<slug:app_name>/tasks/<str:task_name>/", page(views.task_detail), name="task_detail"),
        path(
            "<slug:app_name>/tasks/<str:task_name>/history/",
            page(views.task_history),
            name="task_history",
        ),
    ]
