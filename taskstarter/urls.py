from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from limepkg_task_starter.api import api

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
