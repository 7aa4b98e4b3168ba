"""The application a task runs for: its name, the user it runs as, its language and config."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lime_task import headers
from lime_task.backend import get_backend
from lime_task.config import DEFAULT_LANGUAGE, ApplicationConfig, parse_application_config
from lime_task.exceptions import NotFoundError

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

UNKNOWN_APPLICATION = "No application named {name!r}"


class LimeApplication:
    """What a task receives as its first argument.

    ``config`` and ``user`` are read from the database the first time they are used, so a task
    that needs neither costs no query. Pass ``config`` to build one without a database (tests).
    """

    def __init__(
        self,
        name: str,
        *,
        user_name: str | None = None,
        language: str = DEFAULT_LANGUAGE,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.user_name = user_name
        self.language = language
        if config is not None:
            self.__dict__["config"] = config

    def __repr__(self) -> str:
        return f"<LimeApplication {self.name!r} user={self.user_name!r} language={self.language!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LimeApplication):
            return NotImplemented
        return (self.name, self.user_name, self.language) == (
            other.name,
            other.user_name,
            other.language,
        )

    def __hash__(self) -> int:
        return hash((self.name, self.user_name, self.language))

    @cached_property
    def config(self) -> Mapping[str, Any]:
        return _config_of(self.name)

    @cached_property
    def typed_config(self) -> ApplicationConfig:
        """``config`` checked and typed: ``language``, ``timezone``, ``scheduled_tasks``…"""
        return parse_application_config(self.config)

    @cached_property
    def user(self) -> AbstractBaseUser | None:
        """The user the task runs as (``None`` when it runs without one)."""
        if not self.user_name:
            return None
        from django.contrib.auth import get_user_model

        return get_user_model()._default_manager.filter(username=self.user_name).first()


def get_application(
    name: str, *, user_name: str | None = None, language: str | None = None
) -> LimeApplication:
    """The application called ``name``, checked to exist; raises :class:`NotFoundError`."""
    config = _config_of(name)
    return LimeApplication(
        name,
        user_name=user_name,
        language=language or parse_application_config(config).language,
        config=config,
    )


def _config_of(name: str) -> Mapping[str, Any]:
    config = get_backend().application_config(name)
    if config is None:
        raise NotFoundError(UNKNOWN_APPLICATION.format(name=name))
    return config


def as_application(app: LimeApplication | str) -> LimeApplication:
    return app if isinstance(app, LimeApplication) else LimeApplication(str(app))


def application_headers(app: LimeApplication) -> dict[str, str]:
    return {
        headers.APPLICATION: app.name,
        headers.USER: app.user_name or "",
        headers.LANGUAGE: app.language,
    }


def application_from_headers(values: Mapping[str, Any]) -> LimeApplication:
    name = values.get(headers.APPLICATION)
    if not name:
        raise NotFoundError(
            "The message names no application: send Lime tasks with lime_task.send_task"
        )
    return LimeApplication(
        str(name),
        user_name=values.get(headers.USER) or None,
        language=values.get(headers.LANGUAGE) or DEFAULT_LANGUAGE,
    )
