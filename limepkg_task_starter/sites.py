"""The admin site, with the Task starter pages in it."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path


class TaskStarterAdminSite(admin.AdminSite):
    index_template = "task_starter/admin_index.html"
    site_header = "Task Starter administration"
    site_title = "Task Starter"

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from limepkg_task_starter.urls import task_starter_urls

        return [
            path("task-starter/", include((task_starter_urls(self), "task_starter"))),
            *super().get_urls(),
        ]
