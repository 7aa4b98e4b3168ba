"""The Celery app. Its settings come from Django's (``CELERY_*``), built from the tasks config."""

from __future__ import annotations

import os

from celery import Celery

import lime_task.embedded_broker  # noqa: F401 - registers the ``embedded+sqlite://`` transport

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskstarter.settings")

app = Celery("taskstarter")
app.config_from_object("django.conf:settings", namespace="CELERY")
