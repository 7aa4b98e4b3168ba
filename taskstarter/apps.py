from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class TaskStarterAdminConfig(AdminConfig):
    default_site = "limepkg_task_starter.sites.TaskStarterAdminSite"

    def ready(self) -> None:
        super().ready()
        from taskstarter import checks  # noqa: F401 - registers the deployment checks
