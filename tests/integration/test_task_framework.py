"""Django's task framework (``django.tasks``) on the task handlers, and the conformance of our
backend with the framework's own ``ImmediateBackend``: the same behaviours, run against both,
with the differences written down (as tests/upstream_beat does for the scheduler)."""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from lime_task import LimeApplication
from lime_task.framework import TaskResultDoesNotExist, TaskResultStatus, framework
from limepkg_task_starter.models import TaskRun
from tests.limepkg_task_starter.conftest import make_user
from tests.reference_solution.tasks import framework_tasks
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

IMMEDIATE = f"{framework.__name__}.backends.immediate.ImmediateBackend"
OURS = "limepkg_task_starter.task_framework.TaskStarterBackend"


@pytest.fixture
def backends(settings: Any, live_demo_app: LimeApplication) -> None:
    settings.TASKS = {
        "default": {"BACKEND": OURS, "OPTIONS": {"APPLICATION": "demo"}},
        "immediate": {"BACKEND": IMMEDIATE, "OPTIONS": {"TASK_STARTER_APPLICATION": "demo"}},
    }


def finished(backend: str, result: Any) -> Any:
    """The result once it has finished: our backend is read again, the immediate one is."""
    if backend == "immediate":
        return result
    return wait_for(
        lambda: (fresh := result.task.get_result(result.id)).is_finished and fresh,
        30,
        what=f"framework run {result.id} to finish",
    )


# --- The conformance suite: each behaviour against both backends ------------------------------

BOTH = pytest.mark.parametrize("backend", ["default", "immediate"])


@BOTH
def test_enqueue_returns_a_result_that_finishes_with_the_return_value(
    worker: WorkerProcess, backends: None, backend: str
) -> None:
    result = framework_tasks.add.using(backend=backend).enqueue(2, b=3)

    assert result.backend == backend and result.args == [2] and result.kwargs == {"b": 3}
    done = finished(backend, result)
    assert (done.status, done.return_value) == (TaskResultStatus.SUCCESSFUL, 5)
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert done.attempts == 1 and len(done.worker_ids) == 1


@BOTH
def test_a_failure_is_failed_with_the_exception_class(
    worker: WorkerProcess, backends: None, backend: str
) -> None:
    done = finished(backend, framework_tasks.fails.using(backend=backend).enqueue("boom"))

    assert done.status == TaskResultStatus.FAILED
    assert done.errors[0].exception_class_path == "builtins.ValueError"
    assert "boom" in done.errors[0].traceback
    with pytest.raises(ValueError, match="failed"):
        done.return_value  # noqa: B018 - the property raises for a failed run


@BOTH
def test_a_task_taking_the_context_sees_its_own_run(
    worker: WorkerProcess, backends: None, backend: str
) -> None:
    result = framework_tasks.which_attempt.using(backend=backend).enqueue("x")
    done = finished(backend, result)

    assert done.return_value == {"label": "x", "attempt": 1, "id": result.id}


@BOTH
def test_a_coroutine_function_runs_to_its_end(
    worker: WorkerProcess, backends: None, backend: str
) -> None:
    task = framework_tasks.async_double.using(backend=backend)
    if backend == "immediate":
        # It runs the coroutine in the caller's thread, and the browser tests leave an event
        # loop in this one: a thread of its own, as a web request would be.
        def enqueue() -> Any:
            try:
                return task.enqueue(21)
            finally:
                connections.close_all()  # the history written from this thread

        with ThreadPoolExecutor(1) as pool:
            result = pool.submit(enqueue).result()
    else:
        result = task.enqueue(21)
    assert finished(backend, result).return_value == 42


# Where the two differ, by design; each difference asserted both ways.
DIFFERENCES = {
    "supports_get_result": (True, False),  # ours reads the run history from any process
    "supports_priority": (True, True),
    "supports_async_task": (True, True),
    "supports_defer": (False, False),  # neither: a held Celery message is lost with its handler
}


@pytest.mark.parametrize("flag", DIFFERENCES)
def test_capability_flags_say_only_what_holds(backends: None, flag: str) -> None:
    ours, immediate = (getattr(framework.task_backends[a], flag) for a in ("default", "immediate"))
    assert (ours, immediate) == DIFFERENCES[flag]


def test_get_result_of_an_unknown_id_does_not_exist(backends: None) -> None:
    with pytest.raises(TaskResultDoesNotExist):
        framework_tasks.add.get_result("no-such-run")


# --- Our backend: the same history, routing and pages as lime_task ---------------------------


def test_an_enqueued_run_is_in_the_history_and_routed_by_priority(
    worker: WorkerProcess, backends: None
) -> None:
    plain = framework_tasks.add.enqueue(1, 1)
    urgent = framework_tasks.add.using(priority=50).enqueue(1, 2)
    finished("default", plain)
    finished("default", urgent)

    runs = {run.id: run for run in TaskRun.objects.filter(id__in=[plain.id, urgent.id])}
    assert runs[plain.id].task_name == "tests.reference_solution.tasks.framework_tasks.add"
    assert (runs[plain.id].application_id, runs[plain.id].status) == ("demo", "SUCCESS")
    assert runs[plain.id].queue == "lime_default_task_queue"
    assert runs[urgent.id].queue == "lime_task_queue_asap"


def test_a_run_of_another_backend_is_recorded_from_its_signals(backends: None) -> None:
    result = framework_tasks.add.using(backend="immediate").enqueue(20, 22)
    failed = framework_tasks.fails.using(backend="immediate").enqueue("no")

    run = TaskRun.objects.get(id=result.id)
    assert (run.status, run.result, run.application_id) == ("SUCCESS", 42, "demo")
    assert run.started_at is not None and run.finished_at is not None
    failure = TaskRun.objects.get(id=failed.id)
    assert (failure.status, failure.error_type) == ("FAILURE", "builtins.ValueError")


def test_a_framework_task_is_started_from_its_task_page(
    worker: WorkerProcess, backends: None
) -> None:
    from limepkg_task_starter.models import Application

    name = "tests.reference_solution.tasks.framework_tasks.add"
    Application.objects.filter(name="demo").update(
        config={"limepkg_task_starter": {"tasks": [name]}}
    )
    client = Client()
    client.force_login(
        make_user("starter", perms=("view", "start"), applications=(Application.objects.get(),))
    )
    page = client.get(f"/admin/task-starter/demo/tasks/{name}/").content.decode()
    assert 'name="param-a"' in page and 'name="param-b"' in page

    client.post(f"/admin/task-starter/demo/tasks/{name}/", {"arguments": '{"a": 4, "b": 5}'})
    run = TaskRun.objects.get(task_name=name)
    deadline = time.monotonic() + 30
    while run.status != "SUCCESS" and time.monotonic() < deadline:
        time.sleep(0.1)
        run.refresh_from_db()
    assert (run.status, run.result) == ("SUCCESS", 9)
    assert framework_tasks.add.get_result(run.id).return_value == 9
    # Its task page's history and the runs page show it with its outcome and result.
    for shown in (
        client.get(f"/admin/task-starter/demo/tasks/{name}/").content.decode(),
        client.get("/admin/task-starter/demo/runs/").content.decode(),
    ):
        row = shown[shown.index(f'id="run-{run.id}"') :].split("</tr>", 1)[0]
        assert "Success" in row, row
        assert re.search(r'class="ts-result"><div class="ts-clamp">9\s*<', row), row


def test_a_run_of_another_backend_that_cannot_be_recorded_still_runs(
    settings: Any, live_demo_app: LimeApplication
) -> None:
    settings.TASKS = {
        "default": {"BACKEND": OURS, "OPTIONS": {"APPLICATION": "demo"}},
        "immediate": {"BACKEND": IMMEDIATE, "OPTIONS": {"TASK_STARTER_APPLICATION": "gone"}},
    }
    result = framework_tasks.add.using(backend="immediate").enqueue(1, 2)

    assert result.return_value == 3  # the database refused the record (no application "gone")
    assert not TaskRun.objects.filter(id=result.id).exists()
