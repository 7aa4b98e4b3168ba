from __future__ import annotations

import pytest

from lime_task import InvalidArgumentsError, LimeApplication, UnknownTaskError, send_task
from lime_task.dispatch import Dispatch
from lime_task.testing import run_task
from tests.reference_solution.tasks.my_task_file import crash, example_task, who_am_i


def test_run_task_runs_eagerly_with_the_given_application() -> None:
    app = LimeApplication("acme", user_name="ada", language="sv", config={"region": "north"})
    status = run_task(who_am_i, app)
    assert status.status == "SUCCESS"
    assert status.result == {
        "application": "acme",
        "user": "ada",
        "language": "sv",
        "config": {"region": "north"},
    }


def test_run_task_reports_task_failure_as_its_result(lime_app: LimeApplication) -> None:
    status = run_task(example_task, lime_app, None)
    assert (status.status, status.result) == (
        "FAILURE",
        'can only concatenate str (not "NoneType") to str',
    )


def test_run_task_lets_other_errors_through(lime_app: LimeApplication) -> None:
    with pytest.raises(KeyError, match="no such key"):
        run_task(crash, lime_app)


def test_run_task_checks_arguments_like_send_task(lime_app: LimeApplication) -> None:
    with pytest.raises(InvalidArgumentsError):
        run_task(example_task, lime_app, "a", "b")


def test_dispatched_tasks_captures_sends(
    dispatched_tasks: list[Dispatch], lime_app: LimeApplication
) -> None:
    status = send_task(example_task.name, lime_app, "hello", **{"__queue": "special"})

    assert status.status == "PENDING"
    [sent] = dispatched_tasks
    assert (sent.task_name, sent.app, sent.args) == (example_task.name, lime_app, ["hello"])
    assert (sent.route.queue, sent.route.route_type) == ("special", "header_queue")


def test_captured_sends_are_still_checked(dispatched_tasks: list[Dispatch], lime_app) -> None:
    with pytest.raises(UnknownTaskError):
        send_task("not.a.task", lime_app)
    assert dispatched_tasks == []
