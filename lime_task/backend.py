"""Where the task API keeps its runs: a backend named by a setting, given to the API.

``lime_task`` checks and routes what it sends; a backend records runs, publishes their messages
and answers for them. The setting ``LIME_TASK_BACKEND`` names the class, the way Django's
``EMAIL_BACKEND`` does::

    LIME_TASK_BACKEND = "limepkg_task_starter.backend.DatabaseBackend"   # the run history
    LIME_TASK_BACKEND = "lime_task.testing.InMemoryBackend"              # tests, no database

One instance per process is made on first use, and made again when the setting changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from lime_task.dispatch import Dispatch
    from lime_task.status import Origin, TaskStatus

SETTING = "LIME_TASK_BACKEND"
NOT_CONFIGURED = f"Set {SETTING} to the dotted path of a task backend class."


class TaskBackend(Protocol):
    """What the task API needs from whatever keeps its runs."""

    def send(self, dispatch: Dispatch, *, origin: Origin) -> TaskStatus:
        """Record the run as PENDING and publish its message; return its status.

        Raises ``NotFoundError`` for an unknown application and ``TaskNotSentError`` when the
        broker cannot take the message (the run stays recorded as not sent).
        """
        ...

    def get_status(self, task_id: str, app_name: str) -> TaskStatus | None:
        """The run's status, or None when ``app_name`` did not start ``task_id``."""
        ...

    def wait_for_status(self, task_id: str, app_name: str, *, timeout: float) -> TaskStatus | None:
        """Like ``get_status``, but first wait up to ``timeout`` seconds for the run to end."""
        ...

    def application_config(self, name: str) -> Mapping[str, Any] | None:
        """The application's configuration mapping, or None when there is no such application."""
        ...

    def report_progress(self, task_id: str, *, done: int, total: int, message: str) -> None:
        """Record how far a running task has come."""
        ...


@cache
def _load(path: str) -> TaskBackend:
    backend: TaskBackend = import_string(path)()
    return backend


def get_backend() -> TaskBackend:
    path = getattr(settings, SETTING, None)
    if not path:
        raise ImproperlyConfigured(NOT_CONFIGURED)
    return _load(str(path))


@receiver(setting_changed)
def _forget_backend(*, setting: str, **_: Any) -> None:
    if setting == SETTING:
        _load.cache_clear()
