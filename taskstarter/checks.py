"""Deployment checks of this project's own (``manage.py check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

# config/production.env.example's placeholder begins so: copied unchanged, it is public.
PLACEHOLDER_PREFIX = "change-me"
MIN_SECRET_KEY_LENGTH = 50


@register(Tags.security, deploy=True)
def secret_key_is_set(**_: Any) -> list[CheckMessage]:
    key = str(settings.SECRET_KEY)
    if key.startswith(PLACEHOLDER_PREFIX):
        return [
            Error(
                "DJANGO_SECRET_KEY is still the placeholder from production.env.example.",
                hint="Set it to a long random value, for example the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(60))'`.",
                id="taskstarter.E001",
            )
        ]
    if len(key) < MIN_SECRET_KEY_LENGTH:
        return [
            Error(
                f"DJANGO_SECRET_KEY has {len(key)} characters; use at least "
                f"{MIN_SECRET_KEY_LENGTH} random ones.",
                id="taskstarter.E002",
            )
        ]
    return []


@register()
def result_backend_is_chosen(**_: Any) -> list[CheckMessage]:
    """The reference default result backend is Redis on localhost: say so when it is implied."""
    if "backend_connection_string" in settings.LIME_TASKS.model_fields_set:
        return []
    return [
        Warning(
            f"{settings.LIME_CONFIG_FILE} does not set tasks.backend_connection_string, so "
            f"results also go to {settings.LIME_TASKS.backend_connection_string} (the task "
            "handler reference's default).",
            hint="The run history keeps every result: set it to None unless code reads "
            "results through Celery's result backend, or set RESULT_BACKEND_URL.",
            id="taskstarter.W001",
        )
    ]
