"""Stopping tasks while they run, with real task handler processes, on the configured broker:
a cancelled run stops (the embedded broker included), and a handler asked to stop ends within
15 s, idle or busy, alone, with its process group, or under ``runall`` (``bin/start``)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

import lime_task
from lime_task import LimeApplication, send_task
from limepkg_task_starter.models import TaskRun, WorkerHeartbeat
from limepkg_task_starter.services.cancelling import run_cancel
from tests.support.worker import PROJECT_DIR, WorkerProcess, database_url, wait_for

pytestmark = pytest.mark.integration
TASKS = "tests.reference_solution.tasks.my_task_file"
STOP_WITHIN_SECONDS = 15


def own_queue() -> dict[str, str]:
    """Route a test's task to a queue only its own task handler consumes."""
    return {"__queue": f"stopping-{uuid.uuid4().hex[:8]}"}


def _canceller() -> Any:
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("stopper", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["cancel_run", "view_taskrun"])
    )
    return User.objects.get(id=user.id)  # permissions are cached per instance


def started(task_id: str, timeout: float = 30) -> TaskRun:
    return wait_for(
        lambda: TaskRun.objects.filter(id=task_id, status="STARTED").first(),
        timeout,
        what=f"run {task_id} to start",
    )


def progress(task_id: str) -> int:
    return TaskRun.objects.values_list("progress_done", flat=True).get(id=task_id) or 0


# --- Cancelling a running run -----------------------------------------------------------------


def test_a_cancelled_running_task_stops_within_5_s_and_stays_cancelled(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    route = own_queue()
    handler = own_worker(concurrency=1, queues=route["__queue"])
    steps, pause = 40, 0.25  # would end 10 s after it started, reporting progress every step
    sent = send_task(f"{TASKS}.counted_steps", live_demo_app, steps, pause, **route)
    started(sent.id)
    wait_for(lambda: progress(sent.id) >= 2, 20, what="the task to make progress")

    cancelled_at = time.monotonic()
    run_cancel(actor=_canceller(), run=TaskRun.objects.get(id=sent.id))
    wait_for(
        lambda: "stopped it" in TaskRun.objects.get(id=sent.id).later_reports,
        5,
        what=f"{handler.hostname} to confirm it stopped the run",
    )
    stopped_after = time.monotonic() - cancelled_at
    stopped_at_step = progress(sent.id)

    # Polled past the time the task would have ended: no progress, and still Cancelled.
    would_end = cancelled_at + steps * pause
    statuses = set()
    while time.monotonic() < would_end + 2:
        statuses.add(lime_task.get_status(sent.id, "demo").status)
        time.sleep(0.5)
    run = TaskRun.objects.get(id=sent.id)
    assert statuses == {"REVOKED"}
    assert (run.status, progress(sent.id)) == ("REVOKED", stopped_at_step)
    assert stopped_at_step < steps
    assert run.reason == "Cancelled by stopper while it ran; its worker was told to stop it."
    assert run.later_reports.startswith(f"{handler.hostname} stopped it at")
    print(f"cancel to stopped: {stopped_after:.2f} s")

    # The handler goes on taking work: the pool process started in place of the stopped one
    # can write its runs (on SQLite it was forked while no thread of the handler wrote).
    after = send_task(f"{TASKS}.my_task", live_demo_app, 2, 2, **route)
    try:
        done = wait_for(
            lambda: (s := lime_task.get_status(after.id, "demo")).is_completed() and s, 30
        )
    except TimeoutError:
        pytest.fail(f"the run after the cancel did not end; the handler said:\n{handler.log()}")
    assert done.result == 4


# --- A task handler asked to stop -------------------------------------------------------------


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = task / "children"
        for child in children.read_text().split() if children.exists() else ():
            found += [int(child), *descendants(int(child))]
    return found


def stopped_within(process: subprocess.Popen[bytes], send: Callable[[], None]) -> float:
    """Signal, then wait for the exit; how long it took (fails after STOP_WITHIN_SECONDS)."""
    began = time.monotonic()
    send()
    try:
        process.wait(timeout=STOP_WITHIN_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"still running {STOP_WITHIN_SECONDS} s after the signal")
    return time.monotonic() - began


def assert_ended_by_the_stop(task_id: str, sig: str = "SIGTERM") -> None:
    run = TaskRun.objects.get(id=task_id)
    assert run.status == "FAILURE"
    assert run.reason.startswith("Its task handler ")
    assert f"was asked to stop ({sig}) while it ran" in run.reason
    assert run.later_reports == ""  # the pool's own word on the killed process is not added


@pytest.mark.parametrize(
    ("whom", "sig", "busy"),
    [
        ("process", signal.SIGTERM, False),
        ("process", signal.SIGTERM, True),
        ("process group", signal.SIGTERM, False),  # systemd's control-group kill
        ("process group", signal.SIGTERM, True),
        ("process group", signal.SIGINT, True),  # Ctrl-C in the handler's terminal
    ],
    ids=["alone-idle", "alone-busy", "group-idle", "group-busy", "ctrl-c-busy"],
)
def test_a_task_handler_stops_within_15_s(
    own_worker: Callable[..., WorkerProcess],
    live_demo_app: LimeApplication,
    whom: str,
    sig: signal.Signals,
    busy: bool,
) -> None:
    route = own_queue()
    handler = own_worker(concurrency=2, queues=route["__queue"])
    family = [handler.process.pid, *descendants(handler.process.pid)]
    if busy:
        sent = send_task(f"{TASKS}.sleeper", live_demo_app, 60, **route)
        started(sent.id)

    kill = os.killpg if whom == "process group" else os.kill
    took = stopped_within(handler.process, lambda: kill(handler.process.pid, sig))
    print(f"{whom} {sig.name} {'busy' if busy else 'idle'}: stopped in {took:.1f} s")

    assert handler.process.returncode == 0, handler.log()
    assert "Traceback" not in handler.log()
    assert wait_for(lambda: all(_gone(pid) for pid in family), 5, what="the pool to be gone")
    if busy:
        assert_ended_by_the_stop(sent.id, sig.name)


# --- runall, what bin/start runs --------------------------------------------------------------


@pytest.fixture
def runall(
    transactional_db: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``manage.py runall`` on the test database and broker, on queues of its own.

    ``runall`` is what bin/start runs, on the embedded broker: it is tested there (bin/test's
    integration-embedded run); each start costs half a minute, too dear to repeat per broker."""
    if not settings.CELERY_BROKER_URL.startswith("embedded"):
        pytest.skip("runall is bin/start's way, on the embedded broker: tested in that run")
    prefix = f"r{uuid.uuid4().hex[:6]}_"
    monkeypatch.setenv("LIME_TASK_QUEUE_PREFIX", prefix)  # this process sends to them too
    processes: list[subprocess.Popen[bytes]] = []

    def start(*, ready: bool = True) -> subprocess.Popen[bytes]:
        addrport = f"127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "BROKER_URL": settings.CELERY_BROKER_URL,
            "LIME_TASKS_HEARTBEAT_INTERVAL": "0.5",
            "LIME_PACKAGES": "tests.reference_solution",
            "LIME_TASK_QUEUE_PREFIX": prefix,
        }
        command = [sys.executable, "manage.py", "runall", "--addrport", addrport]
        log = tmp_path / "runall.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "--concurrency", "1", "--web-workers", "1"],
                cwd=PROJECT_DIR,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the test's stand-in for a terminal of its own
            )
        processes.append(process)
        if not ready:
            return process
        # Its handler has the default name; the tests' own handlers are named test-...
        alive = WorkerHeartbeat.objects.filter(last_seen__gte=timezone.now()).exclude(
            hostname__startswith="test-"
        )
        try:
            wait_for(
                lambda: process.poll() is not None or alive.exists(),
                300,  # runall collects the static files first: long on a loaded machine
                what="runall's task handler to start",
            )
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        assert process.poll() is None, log.read_text()
        return process

    yield start
    for process in processes:
        for pid in [process.pid, *descendants(process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("how", "busy"),
    [("SIGTERM", False), ("SIGTERM", True), ("Ctrl-C", True)],
    ids=["SIGTERM-idle", "SIGTERM-busy", "ctrl-c-busy"],
)
def test_runall_stops_everything_within_15_s(
    runall: Callable[..., subprocess.Popen[bytes]],
    live_demo_app: LimeApplication,
    tmp_path: Path,
    how: str,
    busy: bool,
) -> None:
    process = runall()
    if busy:
        sent = send_task(f"{TASKS}.sleeper", live_demo_app, 60)
        started(sent.id)
    family = [process.pid, *descendants(process.pid)]

    if how == "Ctrl-C":  # a terminal sends SIGINT to its foreground process group
        send = lambda: os.killpg(process.pid, signal.SIGINT)  # noqa: E731
    else:  # a service manager, or ``timeout``
        send = lambda: os.kill(process.pid, signal.SIGTERM)  # noqa: E731
    took = stopped_within(process, send)
    print(f"runall {how} {'busy' if busy else 'idle'}: stopped in {took:.1f} s")

    log = (tmp_path / "runall.log").read_text(errors="replace")
    assert process.returncode == 0, log
    assert "Traceback" not in log
    assert wait_for(lambda: all(_gone(pid) for pid in family), 5, what="every child to be gone")
    if busy:
        assert_ended_by_the_stop(sent.id, "SIGTERM")


def test_runall_stopped_while_it_collects_static_files_stops_at_once(
    runall: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    # runall collects only when the static sources changed since its last collection.
    (Path(settings.STATIC_ROOT) / ".sources-fingerprint").unlink(missing_ok=True)
    process = runall(ready=False)

    def collecting() -> list[int]:
        found = []
        for pid in descendants(process.pid):
            with contextlib.suppress(FileNotFoundError):  # a process that just ended
                if b"collectstatic" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(pid)
        return found

    collector = wait_for(collecting, 120, what="runall to collect the static files")
    took = stopped_within(process, lambda: os.kill(process.pid, signal.SIGTERM))
    print(f"runall SIGTERM while collecting static files: stopped in {took:.1f} s")

    log = (tmp_path / "runall.log").read_text(errors="replace")
    assert process.returncode == 0, log
    assert "Traceback" not in log
    assert wait_for(lambda: all(_gone(pid) for pid in collector), 5, what="collectstatic to end")
