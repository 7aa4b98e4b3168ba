"""Helpers for testing tasks, usable as a pytest plugin.

In a solution's ``conftest.py``::

    pytest_plugins = ["lime_task.testing"]

    def test_dummy(run_task, lime_app):
        status = run_task(dummy_task, lime_app, 2, 3)
        assert status.result == 30

    def test_dispatches(dispatched_tasks, lime_app):
        my_code_that_sends(lime_app)
        assert [d.task_name for d in dispatched_tasks] == ["my_solution.tasks.my_tasks.other"]
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import override_settings

from lime_task.application import LimeApplication
from lime_task.backend import get_backend
from lime_task.decorator import LimeTask
from lime_task.dispatch import Dispatch, check_arguments, check_signature
from lime_task.exceptions import TaskFailure
from lime_task.status import Origin, State, TaskStatus


def run_task(task: LimeTask, app: LimeApplication, *args: Any, **kwargs: Any) -> TaskStatus:
    """Run ``task`` in this process, as the worker would, and return its status.

    The arguments are checked as ``send_task`` checks them. ``TaskFailure`` gives FAILURE with
    its message as result; any other exception propagates, so a test shows its traceback.
    Nothing is recorded in the run history.
    """
    check_signature(task, list(args), kwargs)
    check_arguments(list(args), kwargs)
    outcome = task.apply((app, *args), kwargs, throw=False)
    if outcome.failed():
        error = outcome.result
        if isinstance(error, TaskFailure):
            return TaskStatus(outcome.id, State.FAILURE, error.message)
        raise error
    return TaskStatus(outcome.id, State.SUCCESS, outcome.result)


class InMemoryBackend:
    """A task backend that keeps what is sent in memory and sends nothing.

    ``send_task`` still checks the task, its arguments and its route; each send is kept in
    ``dispatches`` and reads back as PENDING through ``get_status``. Every application exists,
    with the config given to :meth:`add_application` or an empty one.
    """

    def __init__(self) -> None:
        self.dispatches: list[Dispatch] = []
        self.statuses: dict[tuple[str, str], TaskStatus] = {}
        self.applications: dict[str, Mapping[str, Any]] = {}
        self.progress: dict[str, tuple[int, int, str]] = {}

    def add_application(self, name: str, config: Mapping[str, Any]) -> None:
        self.applications[name] = config

    def send(self, dispatch: Dispatch, *, origin: Origin) -> TaskStatus:
        status = TaskStatus(str(uuid.uuid4()), State.PENDING)
        self.dispatches.append(dispatch)
        self.statuses[(status.id, dispatch.app.name)] = status
        return status

    def get_status(self, task_id: str, app_name: str) -> TaskStatus | None:
        return self.statuses.get((task_id, app_name))

    def wait_for_status(self, task_id: str, app_name: str, *, timeout: float) -> TaskStatus | None:
        return self.get_status(task_id, app_name)  # nothing runs here: it never changes

    def application_config(self, name: str) -> Mapping[str, Any] | None:
        return self.applications.get(name, {})

    def report_progress(self, task_id: str, *, done: int, total: int, message: str) -> None:
        self.progress[task_id] = (done, total, message)


IN_MEMORY_BACKEND = f"{InMemoryBackend.__module__}.{InMemoryBackend.__qualname__}"


@contextmanager
def in_memory_backend() -> Iterator[InMemoryBackend]:
    """Within the block, the task API uses a fresh :class:`InMemoryBackend`."""
    with override_settings(LIME_TASK_BACKEND=IN_MEMORY_BACKEND):
        backend = get_backend()
        assert isinstance(backend, InMemoryBackend)
        yield backend


@pytest.fixture
def lime_app() -> LimeApplication:
    """An application named ``test`` with an empty config, needing no database."""
    return LimeApplication("test", user_name="test-user", config={})


@pytest.fixture(name="run_task")
def run_task_fixture() -> Callable[..., TaskStatus]:
    return run_task


@pytest.fixture
def task_backend() -> Iterator[InMemoryBackend]:
    """The in-memory backend the task API uses during the test."""
    with in_memory_backend() as backend:
        yield backend


@pytest.fixture
def dispatched_tasks(task_backend: InMemoryBackend) -> list[Dispatch]:
    """What ``send_task`` sent during the test (checked and routed, but never sent)."""
    return task_backend.dispatches
