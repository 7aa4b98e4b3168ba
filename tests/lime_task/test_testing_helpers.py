from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from lime_task import (
    InvalidArgumentsError,
    LimeApplication,
    NotFoundError,
    TaskStatus,
    UnknownTaskError,
    get_application,
    get_status,
    send_task,
)
from lime_task.backend import get_backend
from lime_task.dispatch import Dispatch
from lime_task.testing import IN_MEMORY_BACKEND, InMemoryBackend, run_task
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


def test_in_memory_backend_reads_back_what_was_sent(
    task_backend: InMemoryBackend, lime_app: LimeApplication
) -> None:
    sent = send_task(example_task.name, lime_app, "hello")
    assert get_status(sent.id, lime_app.name) == TaskStatus(sent.id, "PENDING")
    with pytest.raises(NotFoundError):
        get_status(sent.id, "another-application")


def test_in_memory_backend_gives_applications_their_config(task_backend: InMemoryBackend) -> None:
    task_backend.add_application("acme", {"language": "sv", "region": "north"})
    app = get_application("acme", user_name="ada")
    assert (app.language, app.config["region"]) == ("sv", "north")


def test_the_backend_is_the_one_the_setting_names(settings) -> None:
    settings.LIME_TASK_BACKEND = IN_MEMORY_BACKEND
    first = get_backend()
    assert isinstance(first, InMemoryBackend)
    assert get_backend() is first  # one per process
    settings.LIME_TASK_BACKEND = "limepkg_task_starter.backend.DatabaseBackend"
    assert not isinstance(get_backend(), InMemoryBackend)


def test_a_missing_backend_setting_is_a_clear_error(settings) -> None:
    del settings.LIME_TASK_BACKEND
    with pytest.raises(ImproperlyConfigured, match="LIME_TASK_BACKEND"):
        get_backend()
