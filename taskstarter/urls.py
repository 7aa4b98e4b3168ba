from __future__ import annotations

from django.contrib import admin
from django.templatetags.static import static
from django.urls import path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from limepkg_task_starter.api import api

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    # Browsers ask for /favicon.ico on every page that names no icon (the admin's own pages).
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("task_starter/favicon.svg"))),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
