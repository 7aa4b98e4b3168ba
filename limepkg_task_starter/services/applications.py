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


def config_merged(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with ``changes`` laid over it: mappings merge key by key, anything else
    (lists included) is replaced, so ``tasks: [...]`` in ``changes`` is the whole new list."""
    merged = dict(current)
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = config_merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@transaction.atomic
def applications_import(*, data: Mapping[str, Any], merge: bool = False) -> list[Application]:
    """Create or update applications from ``{name: {config: {...}}}``; all or nothing.

    An existing application's config is replaced, or with ``merge`` the given keys are laid
    over it (see :func:`config_merged`). Each resulting config is checked against the
    application config schema first.
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
        existing = Application.objects.filter(name=str(name)).first()
        if merge and existing is not None:
            config = config_merged(existing.config or {}, config)
        try:
            parse_application_config(config)
        except InvalidApplicationConfigError as error:
            raise InvalidApplicationError(f"{name}: {error}") from error
        application, _ = Application.objects.update_or_create(
            name=str(name), defaults={"config": config}
        )
        imported.append(application)
    return imported
