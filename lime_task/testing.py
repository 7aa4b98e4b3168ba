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

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from lime_task import dispatch
from lime_task.application import LimeApplication
from lime_task.decorator import LimeTask
from lime_task.dispatch import Dispatch, check_arguments, check_signature
from lime_task.exceptions import TaskFailure
from lime_task.status import State, TaskStatus


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


@contextmanager
def capture_dispatches() -> Iterator[list[Dispatch]]:
    """Within the block, ``send_task`` checks and records what it would send, and sends nothing."""
    previous, captured = dispatch._captured, []
    dispatch._captured = captured
    try:
        yield captured
    finally:
        dispatch._captured = previous


@pytest.fixture
def lime_app() -> LimeApplication:
    """An application named ``test`` with an empty config, needing no database."""
    return LimeApplication("test", user_name="test-user", config={})


@pytest.fixture(name="run_task")
def run_task_fixture() -> Callable[..., TaskStatus]:
    return run_task


@pytest.fixture
def dispatched_tasks() -> Iterator[list[Dispatch]]:
    with capture_dispatches() as captured:
        yield captured
