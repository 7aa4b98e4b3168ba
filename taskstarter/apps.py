from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class TaskStarterAdminConfig(AdminConfig):
    default_site = "limepkg_task_starter.sites.TaskStarterAdminSite"
