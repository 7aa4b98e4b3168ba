"""The admin site, with the Task starter pages in it."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver, include, path, reverse

from limepkg_task_starter.permissions import START, VIEW_RUNS

APP_LABEL = "limepkg_task_starter"
PAGES_ENTRY = "Start tasks and follow their runs"


class TaskStarterAdminSite(admin.AdminSite):
    site_header = "Task Starter administration"
    site_title = "Task Starter"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from limepkg_task_starter.urls import task_starter_urls

        return [
            path("task-starter/", include((task_starter_urls(self), "task_starter"))),
            *super().get_urls(),
        ]

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        """One "Task starter" section, in the index and the sidebar alike: its pages first, then
        the records (applications, runs, audit entries, tokens) for those who may see them."""
        apps: list[Any] = super().get_app_list(request, app_label)
        user = request.user
        if app_label not in (None, APP_LABEL) or not (
            user.has_perm(VIEW_RUNS) or user.has_perm(START)
        ):
            return apps
        pages = {
            "name": PAGES_ENTRY,
            "object_name": "TaskStarterPages",
            "admin_url": reverse("admin:task_starter:index"),
            "add_url": None,
            "view_only": True,
            "perms": {"view": True},
        }
        section = next((app for app in apps if app["app_label"] == APP_LABEL), None)
        if section is None:
            section = {
                "name": "Task starter",
                "app_label": APP_LABEL,
                "app_url": reverse("admin:app_list", kwargs={"app_label": APP_LABEL}),
                "has_module_perms": True,
                "models": [],
            }
            apps.append(section)
        section["models"].insert(0, pages)
        # The section the product is about comes first.
        apps.sort(key=lambda app: app["app_label"] != APP_LABEL)
        return apps
