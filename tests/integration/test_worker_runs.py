"""A real task handler process runs the tasks and keeps their records."""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from typing import Any

import pytest

import lime_task
from lime_task import LimeApplication, send_task
from lime_task.status import Origin
from limepkg_task_starter.models import Application, TaskRun
from taskstarter.celery import app as celery_app
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration
TASKS = "tests.reference_solution.tasks.my_task_file"
logger = logging.getLogger(__name__)


def wait_completed(
    task_id: str, app_name: str = "demo", timeout: float = 30
) -> lime_task.TaskStatus:
    return wait_for(
        lambda: (status := lime_task.get_status(task_id, app_name)).is_completed() and status,
        timeout,
        what=f"task {task_id} to complete",
    )


def test_success_is_recorded_with_timings_and_worker(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(f"{TASKS}.my_task", live_demo_app, 55, 66)

    assert wait_completed(sent.id) == lime_task.TaskStatus(sent.id, "SUCCESS", 121)
    run = TaskRun.objects.get(id=sent.id)
    assert run.worker == worker.hostname
    assert run.created_at <= run.started_at <= run.finished_at
    assert run.queue == "lime_default_task_queue"


def test_wait_for_status_returns_when_the_worker_has_finished(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(f"{TASKS}.my_task", live_demo_app, 2, 3)
    assert lime_task.wait_for_status(sent.id, "demo", timeout=30) == lime_task.TaskStatus(
        sent.id, "SUCCESS", 5
    )


def test_track_current_task_as_the_reference_writes_it(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(f"{TASKS}.dummy_task", live_demo_app)

    assert wait_completed(sent.id).result == 250
    run = TaskRun.objects.get(id=sent.id)
    assert (run.in_history, run.arguments) == (True, {"number": 5, "numberx": 10})


def test_get_status_loop_as_the_reference_writes_it(
    worker: WorkerProcess, live_demo_app: LimeApplication, caplog: pytest.LogCaptureFixture
) -> None:
    sent = send_task(f"{TASKS}.example_task", live_demo_app, "the reference")
    printed = []
    print = printed.append

    # The reference block, with its syntax slips fixed, the 30 s poll shortened, and a deadline.
    task_id = sent.id
    app_name = "demo"
    deadline = time.monotonic() + 60
    try:
        task_status = lime_task.get_status(task_id, app_name)
        while not task_status.is_completed() and time.monotonic() < deadline:
            time.sleep(0.05)
            task_status = lime_task.get_status(task_id, app_name)

        print(("status:", task_status.status))
        print(("result:", task_status.result))
    except lime_task.NotFoundError:
        logger.error(f"Couldn't find task {task_id} for app {app_name}")

    assert printed == [("status:", "SUCCESS"), ("result:", "Done with the task: the reference")]

    app_name = "another-app"
    try:
        lime_task.get_status(task_id, app_name)
    except lime_task.NotFoundError:
        logger.error(f"Couldn't find task {task_id} for app {app_name}")
    assert f"Couldn't find task {task_id} for app another-app" in caplog.text


def test_task_failure_message_is_the_result(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(f"{TASKS}.example_task", live_demo_app, None)

    status = wait_completed(sent.id)
    assert (status.status, status.result) == (
        "FAILURE",
        'can only concatenate str (not "NoneType") to str',
    )
    assert TaskRun.objects.get(id=sent.id).error_type == "lime_task.exceptions.TaskFailure"


def test_unhandled_exception_fails_without_result_but_keeps_the_traceback(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(f"{TASKS}.crash", live_demo_app)

    assert wait_completed(sent.id) == lime_task.TaskStatus(sent.id, "FAILURE", None)
    run = TaskRun.objects.get(id=sent.id)
    assert run.error_type == "builtins.KeyError"
    assert "no such key" in run.traceback and "Traceback" in run.traceback
    # The message apart from the traceback: shown to everyone who may see the run.
    assert run.error_message == "'no such key'"


def test_result_that_is_not_json_fails_with_a_reason(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(f"{TASKS}.returns_a_set", live_demo_app)

    assert wait_completed(sent.id).status == "FAILURE"
    assert "not JSON-serialisable" in TaskRun.objects.get(id=sent.id).reason


def test_the_task_receives_the_senders_application(
    worker: WorkerProcess, transactional_db: None
) -> None:
    Application.objects.create(name="acme", config={"language": "sv", "region": "north"})
    app = lime_task.get_application("acme", user_name="ada")

    sent = send_task(f"{TASKS}.who_am_i", app)

    assert wait_completed(sent.id, "acme").result == {
        "application": "acme",
        "user": "ada",
        "language": "sv",
        "config": {"language": "sv", "region": "north"},
    }


def test_progress_is_stored_while_running(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    sent = send_task(f"{TASKS}.counted_steps", live_demo_app, 4, 0.4)

    midway = wait_for(
        lambda: TaskRun.objects.filter(id=sent.id, status="STARTED", progress_done__gte=1).first(),
        20,
        what="progress while STARTED",
    )
    assert midway.progress_total == 4
    assert wait_completed(sent.id).result == "4 steps"
    run = TaskRun.objects.get(id=sent.id)
    assert (run.progress_done, run.progress_total, run.progress_message) == (4, 4, "step 4")


def test_a_run_sent_by_the_scheduler_is_recorded_when_it_starts(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    # What celery beat sends: no row beforehand, a periodic_task_name header.
    result = celery_app.send_task(
        f"{TASKS}.dummy_task",
        args=[2, 3],
        headers={
            "lime_application": "demo",
            "lime_user": "integration-user",
            "periodic_task_name": "nightly",
        },
    )

    wait_for(lambda: TaskRun.objects.filter(id=result.id).exists(), 20, what="the row")
    assert wait_completed(result.id).result == 30
    run = TaskRun.objects.get(id=result.id)
    assert (run.origin, run.run_as, run.args) == (Origin.SCHEDULE, "integration-user", [2, 3])
    assert run.arguments == {"number": 2, "numberx": 3}


# --- Cancelling, with a real task handler -----------------------------------------------------


def _canceller() -> Any:
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("stopper", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["cancel_run", "view_taskrun"])
    )
    return User.objects.get(id=user.id)  # permissions are cached per instance


def test_a_cancelled_waiting_run_never_runs(
    own_worker: Any, live_demo_app: LimeApplication, tmp_path: Any
) -> None:
    from limepkg_task_starter.services.cancelling import run_cancel

    route = {"__queue": f"cancel-{uuid.uuid4().hex[:8]}"}  # only this test's handler takes it
    own_worker(concurrency=1, queues=route["__queue"])
    busy = send_task(f"{TASKS}.sleeper", live_demo_app, 2, **route)
    marker = tmp_path / "ran"
    waiting = send_task(f"{TASKS}.touch", live_demo_app, str(marker), **route)
    wait_for(
        lambda: TaskRun.objects.filter(id=busy.id, status="STARTED").exists(),
        20,
        what="the handler to be busy",
    )
    run_cancel(actor=_canceller(), run=TaskRun.objects.get(id=waiting.id))
    after = send_task(f"{TASKS}.my_task", live_demo_app, 1, 1, **route)
    wait_completed(after.id)  # the queue has moved past the cancelled run

    run = TaskRun.objects.get(id=waiting.id)
    assert run.status == "REVOKED" and run.reason.startswith("Cancelled by stopper")
    assert not marker.exists(), "the cancelled task ran"


def test_a_cancelled_running_run_is_terminated(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    from limepkg_task_starter.services.cancelling import run_cancel

    sent = send_task(f"{TASKS}.sleeper", live_demo_app, 30)
    wait_for(
        lambda: TaskRun.objects.filter(id=sent.id, status="STARTED").exists(),
        20,
        what="the sleeper to start",
    )
    started = time.monotonic()
    run_cancel(actor=_canceller(), run=TaskRun.objects.get(id=sent.id))
    wait_for(
        lambda: "stopped it" in TaskRun.objects.get(id=sent.id).later_reports,
        20,
        what="the worker to confirm it stopped the run",
    )
    assert time.monotonic() - started < 20  # long before the 30 s sleep would have ended
    run = TaskRun.objects.get(id=sent.id)
    assert run.status == "REVOKED" and run.cancelled_by.username == "stopper"
    # The worker goes on taking work.
    after = send_task(f"{TASKS}.my_task", live_demo_app, 2, 2)
    assert wait_completed(after.id).result == 4


# --- What monitors see ------------------------------------------------------------------------

needs_broadcast = pytest.mark.skipif(
    celery_app.conf.broker_url.startswith("embedded"),
    reason="the embedded broker does not broadcast (control commands, events)",
)


@needs_broadcast
def test_the_workers_page_shows_a_live_handlers_queues_and_pool(
    worker: WorkerProcess, transactional_db: None
) -> None:
    from django.test import Client

    from limepkg_task_starter.models import WorkerHeartbeat
    from tests.limepkg_task_starter.conftest import make_user

    # Each test starts on an emptied database: wait for the handler's next heartbeat.
    wait_for(
        lambda: WorkerHeartbeat.objects.filter(hostname=worker.hostname).exists(),
        10,
        what="the shared handler's heartbeat",
    )
    client = Client()
    client.force_login(make_user("ops", perms=("view",)))
    handlers = {
        h.hostname: h for h in client.get("/admin/task-starter/workers/").context["handlers"]
    }
    shown = handlers[worker.hostname]
    assert shown.alive and shown.concurrency == 2
    assert "lime_default_task_queue" in (shown.queues or [])


@needs_broadcast
def test_with_celery_events_on_a_monitor_such_as_flower_sees_each_run(
    own_worker: Any, live_demo_app: LimeApplication
) -> None:
    import threading

    route = {"__queue": f"events-{uuid.uuid4().hex[:8]}"}
    own_worker(queues=route["__queue"], env={"CELERY_EVENTS": "1"})
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    def listen() -> None:
        with celery_app.connection_for_read() as connection:
            receiver = celery_app.events.Receiver(
                connection, handlers={"*": seen.append}, app=celery_app
            )
            ready.set()
            with contextlib.suppress(TimeoutError, OSError):  # quiet for 15 s: done
                receiver.capture(limit=None, timeout=15, wakeup=False)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    ready.wait(10)
    time.sleep(1)  # the receiver's queue is bound
    sent = send_task(f"{TASKS}.my_task", live_demo_app, 2, 5, **route)
    wait_completed(sent.id)
    wait_for(
        lambda: any(e.get("uuid") == sent.id and e["type"] == "task-succeeded" for e in seen),
        15,
        what="the task-succeeded event",
    )
    kinds = {event["type"] for event in seen if event.get("uuid") == sent.id}
    assert {"task-received", "task-started", "task-succeeded"} <= kinds
