"""Faults: a broker that is down, a worker killed mid-task, a database that goes away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

import lime_task
from lime_task import LimeApplication, send_task
from limepkg_task_starter.models import Application, TaskRun
from tests.support.tcp_proxy import TcpProxy
from tests.support.worker import PROJECT_DIR, WorkerProcess, database_url, wait_for

pytestmark = pytest.mark.integration
TASKS = "tests.reference_solution.tasks.my_task_file"

SEND_SCRIPT = f"""
import lime_task
try:
    lime_task.send_task("{TASKS}.my_task", "demo", 1, 2)
except lime_task.TaskNotSentError as error:
    print("NOT SENT", error.task_id, error.reason)
"""

UNREACHABLE_BROKERS = {
    "redis": "redis://127.0.0.1:1/0",
    "amqp": "amqp://guest:guest@127.0.0.1:1//",
    "embedded": "embedded+sqlite:////nonexistent-dir/broker.sqlite3",
}


def broker_kind() -> str:
    return settings.CELERY_BROKER_URL.split(":", 1)[0].split("+")[0]


def test_broker_down_records_the_run_as_not_sent(live_demo_app: LimeApplication) -> None:
    earlier = TaskRun.objects.create(
        id="earlier",
        application=Application.objects.get(name="demo"),
        task_name=f"{TASKS}.my_task",
        status="SUCCESS",
        result=3,
        created_at=timezone.now(),
    )
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "BROKER_URL": UNREACHABLE_BROKERS[broker_kind()],
        "LIME_PACKAGES": "tests.reference_solution",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "--no-imports", "-c", SEND_SCRIPT],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("NOT SENT"), done.stdout + done.stderr
    task_id = done.stdout.split()[2]
    run = TaskRun.objects.get(id=task_id)
    assert (run.status, run.sent) == ("FAILURE", False)
    assert run.reason.startswith("Not sent: the broker is unavailable")
    assert lime_task.get_status(run.id, "demo").status == "FAILURE"
    earlier.refresh_from_db()
    assert (earlier.status, earlier.result) == ("SUCCESS", 3)


def own_queue() -> dict[str, str]:
    """Route a test's task to a queue only its own task handlers consume (a shared one may run)."""
    return {"__queue": f"faults-{uuid.uuid4().hex[:8]}"}


def test_worker_killed_mid_task_is_reconciled(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    fast_verdict = {"LIME_TASKS_WORKER_LOST_AFTER": "2"}
    route = own_queue()
    doomed = own_worker(env=fast_verdict, queues=route["__queue"])
    sent = send_task(f"{TASKS}.sleeper", live_demo_app, 60, **route)
    wait_for(
        lambda: TaskRun.objects.filter(id=sent.id, status="STARTED").exists(),
        20,
        what="the run to start",
    )

    doomed.kill(signal.SIGKILL)  # the whole task handler: main process and pool
    own_worker(env=fast_verdict)  # any live handler reconciles

    run = wait_for(
        lambda: TaskRun.objects.filter(id=sent.id, status="FAILURE").first(),
        30,
        what="the run to be reconciled",
    )
    assert "stopped responding" in run.reason
    assert run.worker == doomed.hostname


def test_pool_process_killed_mid_task_fails_at_once_with_the_reason(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    route = own_queue()
    handler = own_worker(concurrency=1, queues=route["__queue"])
    sent = send_task(f"{TASKS}.sleeper", live_demo_app, 60, **route)
    wait_for(
        lambda: TaskRun.objects.filter(id=sent.id, status="STARTED").exists(),
        20,
        what="the run to start",
    )

    for pid in handler.pool_child_pids():
        os.kill(pid, signal.SIGKILL)

    status = wait_for(
        lambda: (s := lime_task.get_status(sent.id, "demo")).is_completed() and s,
        20,
        what="the run to fail",
    )
    assert status.status == "FAILURE"
    run = TaskRun.objects.get(id=sent.id)
    assert "worker process running it was lost" in run.reason
    assert "SIGKILL" in run.reason
    assert handler.alive()


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="cuts a network connection to the database server",
)
def test_database_outage_does_not_fail_the_task_and_the_history_catches_up(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication, tmp_path: Path
) -> None:
    db = connection.settings_dict
    proxy = TcpProxy(db.get("HOST") or "127.0.0.1", int(db.get("PORT") or 5432))
    try:
        proxied = {**db, "HOST": "127.0.0.1", "PORT": proxy.port}
        route = own_queue()
        handler = own_worker(
            concurrency=1, queues=route["__queue"], env={"DATABASE_URL": database_url(proxied)}
        )
        marker = tmp_path / "ran.txt"

        proxy.cut()
        during = send_task(f"{TASKS}.touch", live_demo_app, str(marker), **route)
        wait_for(marker.exists, 20, what="the task to run while the database is away")
        assert TaskRun.objects.get(id=during.id).status == "PENDING"

        proxy.restore()
        after = send_task(f"{TASKS}.touch", live_demo_app, str(marker), **route)

        assert wait_for(lambda: lime_task.get_status(after.id, "demo").is_completed(), 30)
        caught_up = TaskRun.objects.get(id=during.id)
        assert (caught_up.status, caught_up.worker) == ("SUCCESS", handler.hostname)
        assert handler.alive()
        assert "Run history write deferred" in handler.log()
    finally:
        proxy.close()


@pytest.mark.skipif(
    not settings.CELERY_BROKER_URL.startswith("amqp"), reason="restarts the RabbitMQ node"
)
def test_rabbitmq_restart_during_a_burst_loses_no_run(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    route = own_queue()
    own_worker(queues=route["__queue"])
    outcomes: list[str] = []

    def send_burst(count: int) -> None:
        try:
            for number in range(count):
                try:
                    send_task(f"{TASKS}.my_task", live_demo_app, number, 1, **route)
                    outcomes.append("sent")
                except lime_task.TaskNotSentError:
                    outcomes.append("not sent")
                time.sleep(0.05)
        finally:
            connection.close()  # this thread's own database connection

    sender = threading.Thread(target=send_burst, args=(150,))
    sender.start()
    time.sleep(1)
    subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=60)
    time.sleep(2)
    subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=60)
    sender.join(timeout=120)

    def settled() -> bool:
        return not TaskRun.objects.filter(status__in=["PENDING", "STARTED"]).exists()

    wait_for(settled, 90, interval=0.5, what="every run to finish or be recorded as not sent")
    runs = TaskRun.objects.all()
    assert runs.count() == len(outcomes) == 150
    assert runs.filter(status="SUCCESS", sent=True).count() == outcomes.count("sent")
    assert runs.filter(status="FAILURE", sent=False).count() == outcomes.count("not sent")
    assert outcomes.count("not sent") > 0, "the restart should have refused some sends"
