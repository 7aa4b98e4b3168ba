"""Routing, limits, acknowledgement and events with real task handler processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection as db
from kombu import Connection, Queue, binding

import lime_task
from lime_task import LimeApplication, events, send_task
from lime_task.config import RoutingConfig
from limepkg_task_starter.models import TaskRun
from tests.support.worker import PROJECT_DIR, WorkerProcess, database_url, wait_for

pytestmark = pytest.mark.integration
TASKS = "tests.reference_solution.tasks.my_task_file"


def completed(task_id: str, timeout: float = 30) -> TaskRun:
    wait_for(
        lambda: lime_task.get_status(task_id, "demo").is_completed(),
        timeout,
        what=f"run {task_id} to complete",
    )
    return TaskRun.objects.get(id=task_id)


@pytest.mark.parametrize(
    ("task", "route_headers", "config_queue", "route_type"),
    [
        ("my_task", {"__queue": "header_q"}, "special", "task_route"),
        ("my_task", {"__queue": "header_q", "__qos_category": "asap"}, "header_q", "header_queue"),
        ("my_task", {"__qos_category": "background"}, "lime_task_queue_background", "header_qos"),
        ("urgent", {}, "lime_task_queue_asap", "task_qos"),
        ("my_task", {}, "lime_default_task_queue", "default_queue"),
    ],
)
def test_each_route_type_reaches_its_queue_with_prefix_and_suffix(
    own_worker: Callable[..., WorkerProcess],
    live_demo_app: LimeApplication,
    settings,
    monkeypatch: pytest.MonkeyPatch,
    task: str,
    route_headers: dict[str, str],
    config_queue: str,
    route_type: str,
) -> None:
    run_id = uuid.uuid4().hex[:6]
    prefix, suffix = f"t{run_id}_", "_eu"
    monkeypatch.setenv("LIME_TASK_QUEUE_PREFIX", prefix)
    monkeypatch.setenv("LIME_TASK_QUEUE_SUFFIX", suffix)
    routed = "my_task" if route_type == "task_route" else "nothing.routed"
    settings.LIME_TASKS = settings.LIME_TASKS.model_copy(
        update={"routing": RoutingConfig(tasks={f"{TASKS}.{routed}": "special"})}
    )
    queue = f"{prefix}{config_queue}{suffix}"
    args = (1, 2) if task == "my_task" else ()

    handler = own_worker(queues=queue, concurrency=1)  # consumes this queue only
    sent = send_task(f"{TASKS}.{task}", live_demo_app, *args, **route_headers)

    run = completed(sent.id)
    assert (run.status, run.queue, run.route_type, run.worker) == (
        "SUCCESS",
        queue,
        route_type,
        handler.hostname,
    )


def test_soft_time_limit_ends_the_run_with_the_reason(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    queue = f"limits-{uuid.uuid4().hex[:6]}"
    own_worker(
        queues=queue,
        env={"LIME_TASKS_TASK_SOFT_TIME_LIMIT": "1", "LIME_TASKS_TASK_TIME_LIMIT": "3"},
    )
    sent = send_task(f"{TASKS}.sleeper", live_demo_app, 30, __queue=queue)

    run = completed(sent.id)
    assert (run.status, run.reason) == ("FAILURE", "Ended by the soft time limit.")
    assert run.error_type.endswith("SoftTimeLimitExceeded")


def test_hard_time_limit_ends_the_run_with_the_reason(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    queue = f"limits-{uuid.uuid4().hex[:6]}"
    own_worker(
        queues=queue,
        env={"LIME_TASKS_TASK_SOFT_TIME_LIMIT": "1", "LIME_TASKS_TASK_TIME_LIMIT": "2"},
    )
    sent = send_task(f"{TASKS}.stubborn_sleeper", live_demo_app, 30, __queue=queue)

    run = completed(sent.id)
    assert run.status == "FAILURE"
    assert run.reason.startswith("Ended by the hard time limit")


@pytest.mark.skipif(
    settings.CELERY_BROKER_URL.startswith("embedded"),
    reason="the embedded broker does not redeliver a dead worker's messages",
)
def test_acks_late_task_completes_on_a_second_worker_after_sigkill(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication, tmp_path: Path
) -> None:
    queue = f"late-{uuid.uuid4().hex[:6]}"
    # Redis returns an unacknowledged message only after the visibility timeout, checked
    # every unacked_restore_interval * unacked_restore_throttle seconds (100 s by default).
    redelivery = {
        "BROKER_TRANSPORT_OPTIONS": json.dumps(
            {"visibility_timeout": 5, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}
        )
    }
    first = own_worker(queues=queue, concurrency=1, env=redelivery)
    marker = tmp_path / "attempts.txt"
    # Shorter than the visibility timeout, or Redis would hand it out a third time.
    sent = send_task(f"{TASKS}.late_ack_sleeper", live_demo_app, 2, str(marker), __queue=queue)
    wait_for(
        lambda: TaskRun.objects.filter(id=sent.id, status="STARTED").exists(),
        20,
        what="the first attempt",
    )

    first.kill(signal.SIGKILL)
    second = own_worker(queues=queue, concurrency=1, env=redelivery)

    run = completed(sent.id, timeout=60)
    assert (run.status, run.result, run.worker) == ("SUCCESS", "slept 2", second.hostname), (
        run.reason,
        run.error_type,
    )
    assert marker.read_text().count("attempt") == 2


def handler_queue(name: str, pattern: str) -> Queue:
    return Queue(
        name,
        exchange=events.exchange,
        durable=True,
        bindings=[binding(events.exchange, routing_key=events.broker_binding(pattern))],
    )


def remove_queue(queue: Queue) -> None:
    """Delete a queue and its bindings (Redis keeps bindings in a set that only a channel
    which declared them removes on delete)."""
    with Connection(settings.CELERY_BROKER_URL) as connection:
        bound = queue(connection.default_channel)
        bound.declare()
        bound.delete()


@pytest.fixture
def event_queue() -> Queue:
    """A queue bound as a handler of core.task.*.failure.v1 would be; removed afterwards."""
    queue = handler_queue(f"test-events-{uuid.uuid4().hex[:6]}", "core.task.*.failure.v1")
    with Connection(settings.CELERY_BROKER_URL) as connection:
        queue(connection.default_channel).declare()
    yield queue
    remove_queue(queue)


def drain(queue: Queue, expected: int, timeout: float = 20) -> list[tuple[str, dict]]:
    """Consume until ``expected`` events came, then one quiet second to catch any extra."""
    received: list[tuple[str, dict]] = []

    def on_message(body: dict, message) -> None:
        received.append((message.delivery_info["routing_key"], body))
        message.ack()

    connection = Connection(settings.CELERY_BROKER_URL)
    with connection, connection.Consumer([queue], callbacks=[on_message], accept=["json"]):
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            _drain(connection, 0.2, deadline)
        _drain(connection, 1.0, time.monotonic() + 5)  # anything more that should not come
    return received


def _drain(connection: Connection, quiet_seconds: float, deadline: float) -> None:
    """Take events until none came for ``quiet_seconds``, or the deadline passed."""
    try:
        while time.monotonic() < deadline:
            connection.drain_events(timeout=quiet_seconds)
    except TimeoutError:
        pass


@pytest.mark.skipif(
    settings.CELERY_BROKER_URL.startswith("embedded"),
    reason="events need a broker with shared topic bindings (RabbitMQ, Redis)",
)
def test_failure_handlers_receive_exactly_the_failure_events(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication, event_queue: Queue
) -> None:
    queue = f"events-{uuid.uuid4().hex[:6]}"
    own_worker(queues=queue)  # a fresh process: it sees the new binding at once
    ok = send_task(f"{TASKS}.my_task", live_demo_app, 1, 2, __queue=queue)
    failed = send_task(f"{TASKS}.example_task", live_demo_app, None, __queue=queue)
    crashed = send_task(f"{TASKS}.crash", live_demo_app, __queue=queue)
    for sent in (ok, failed, crashed):
        completed(sent.id)

    received = drain(event_queue, expected=2)

    assert sorted(body["task_id"] for _, body in received) == sorted([failed.id, crashed.id])
    by_id = {body["task_id"]: (key, body) for key, body in received}
    key, body = by_id[failed.id]
    assert key == f"core.task.{TASKS}.example_task.failure.v1"
    assert (body["status"], body["application"], body["user"]) == ("FAILURE", "demo", "admin")
    assert body["result"] == 'can only concatenate str (not "NoneType") to str'
    assert body["error"]["type"] == "lime_task.exceptions.TaskFailure"
    assert body["duration_ms"] is not None and body["latency_ms"] is not None
    assert by_id[crashed.id][1]["error"] == {
        "type": "builtins.KeyError",
        "message": "'no such key'",
    }


@pytest.mark.skipif(
    settings.CELERY_BROKER_URL.startswith("embedded"),
    reason="events need a broker with shared topic bindings (RabbitMQ, Redis)",
)
def test_eventhandler_process_mails_failures(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication, tmp_path: Path
) -> None:
    queue_name = f"test-handlers-{uuid.uuid4().hex[:6]}"
    mail_dir = tmp_path / "mail"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(db.settings_dict),
        "BROKER_URL": settings.CELERY_BROKER_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(mail_dir),
        "LIME_TASK_FAILURE_EMAILS": "ops@example.com",
    }
    handler = subprocess.Popen(
        [sys.executable, "manage.py", "eventhandler", "--queue", queue_name],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in handler.stdout:
            if line.startswith("Listening on"):
                break
        task_queue = f"events-{uuid.uuid4().hex[:6]}"
        own_worker(queues=task_queue)
        failed = send_task(f"{TASKS}.crash", live_demo_app, __queue=task_queue)
        completed(failed.id)

        mails = wait_for(lambda: list(mail_dir.glob("*.log")), 20, what="the mail")
        text = mails[0].read_text()
        assert f"Task failed: {TASKS}.crash (demo)" in text
        assert "ops@example.com" in text and failed.id in text
        assert "builtins.KeyError" in text
    finally:
        handler.terminate()
        handler.wait(timeout=20)
        remove_queue(handler_queue(queue_name, "core.task.*.failure.v1"))


def test_the_handler_logs_each_run_as_json(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    queue = f"logs-{uuid.uuid4().hex[:6]}"
    handler = own_worker(queues=queue, env={"LOG_FORMAT": "json"})
    sent = send_task(f"{TASKS}.my_task", live_demo_app, 1, 2, __queue=queue)
    completed(sent.id)

    def line_for_run() -> dict | None:
        for line in handler.log().splitlines():
            if line.startswith("{") and sent.id in line and "task_outcome" in line:
                return json.loads(line)
        return None

    record = wait_for(line_for_run, 10, what="the completion log line")
    assert {
        key: record[key]
        for key in (
            "task_id",
            "task_name",
            "task_queue",
            "task_user_id",
            "task_outcome",
            "application",
        )
    } == {
        "task_id": sent.id,
        "task_name": f"{TASKS}.my_task",
        "task_queue": queue,
        "task_user_id": "admin",
        "task_outcome": "SUCCESS",
        "application": "demo",
    }
    assert record["task_latency_ms"] >= 0 and record["task_duration_ms"] >= 0
