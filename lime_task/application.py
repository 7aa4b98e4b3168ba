"""The application a task runs for: its name, the user it runs as, its language and config."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from lime_task import headers
from lime_task.exceptions import NotFoundError

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

DEFAULT_LANGUAGE = "en"


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
        from limepkg_task_starter.selectors import application_config_get

        config = application_config_get(name=self.name)
        if config is None:
            raise NotFoundError(f"No application named {self.name!r}")
        return config

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
    from limepkg_task_starter.selectors import application_config_get

    config = application_config_get(name=name)
    if config is None:
        raise NotFoundError(f"No application named {name!r}")
    return LimeApplication(
        name,
        user_name=user_name,
        language=language or str(config.get("language", DEFAULT_LANGUAGE)),
        config=config,
    )


def as_application(app: LimeApplication | str) -> LimeApplication:
    return app if isinstance(app, LimeApplication) else LimeApplication(str(app))


def application_headers(app: LimeApplication) -> dict[str, str | None]:
    return {
        headers.APPLICATION: app.name,
        headers.USER: app.user_name,
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
        user_name=values.get(headers.USER),
        language=values.get(headers.LANGUAGE) or DEFAULT_LANGUAGE,
    )
