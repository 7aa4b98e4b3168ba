"""Applications: created and updated from a Lime-style application config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction

from lime_task.config import InvalidApplicationConfigError, parse_application_config
from limepkg_task_starter.models import Application, validate_application_name

NOT_A_MAPPING = "{name}: 'config' must be a mapping"
NOT_A_SLUG = "{name!r} is not a valid application name: use letters, digits, '-' and '_' only"


class InvalidApplicationError(ValueError):
    """An application that cannot be imported; the message names it and what is wrong."""


@transaction.atomic
def applications_import(*, data: Mapping[str, Any]) -> list[Application]:
    """Create or update applications from ``{name: {config: {...}}}``; all or nothing.

    Each config is checked against the application config schema first.
    """
    imported = []
    for name, section in data.items():
        try:
            validate_slug(str(name))
        except ValidationError as error:
            raise InvalidApplicationError(NOT_A_SLUG.format(name=name)) from error
        try:
            validate_application_name(str(name))
        except ValidationError as error:
            raise InvalidApplicationError(" ".join(error.messages)) from error
        config = (section or {}).get("config") if isinstance(section, dict) else None
        config = config or {}
        if not isinstance(config, dict):
            raise InvalidApplicationError(NOT_A_MAPPING.format(name=name))
        try:
            parse_application_config(config)
        except InvalidApplicationConfigError as error:
            raise InvalidApplicationError(f"{name}: {error}") from error
        application, _ = Application.objects.update_or_create(
            name=str(name), defaults={"config": config}
        )
        imported.append(application)
    return imported
