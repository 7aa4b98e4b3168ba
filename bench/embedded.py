"""The embedded default's start → STARTED latency, beside plain Celery on kombu's stock
SQLite transport. Run by ``bench/run.py``; prints the two p50 values in seconds.

    .venv/bin/python bench/embedded.py [--runs 50]
    .venv/bin/python bench/embedded.py --quick    # 5 runs (CI)
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
VAR = PROJECT_DIR / "var"
for leftover in VAR.glob("bench-embedded*"):
    leftover.unlink()
os.environ.update(
    DJANGO_SETTINGS_MODULE="taskstarter.settings",
    DATABASE_URL=f"sqlite:///{VAR / 'bench-embedded.sqlite3'}",
    BROKER_URL=f"embedded+sqlite:///{VAR / 'bench-embedded-broker.sqlite3'}",
    LIME_PACKAGES="bench.solution",
    LOG_LEVEL="WARNING",
)
sys.path.insert(0, str(PROJECT_DIR))

from bench.environment import end_on_sigterm, wait  # noqa: E402

end_on_sigterm()

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

import lime_task  # noqa: E402
from limepkg_task_starter.models import Application, WorkerHeartbeat  # noqa: E402

NOOP = "bench.solution.tasks.trivial.noop"


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    # The worker's main process only: on the SQLite transports, a SIGTERM to the whole group
    # kills the pool processes under the main one, which then hangs until the SIGKILL below.
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def ours(count: int) -> float:
    call_command("migrate", verbosity=0)
    Application.objects.get_or_create(name="bench")
    hostname = f"embedded-{uuid.uuid4().hex[:6]}@localhost"
    worker = start(
        [
            sys.executable,
            "manage.py",
            "taskhandler",
            "-c",
            "2",
            "-n",
            hostname,
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ],
        {},
    )
    try:
        wait(
            WorkerHeartbeat.objects.filter(hostname=hostname).exists,
            60,
            0.1,
            "the task handler's start",
        )
        app = lime_task.LimeApplication("bench")
        timings = []
        for i in range(count + 5):
            started = time.perf_counter()
            sent = lime_task.send_task(NOOP, app, i)
            wait(
                lambda: lime_task.get_status(sent.id, "bench").status != "PENDING",  # noqa: B023
                30,
                0.002,
                f"run {sent.id}'s start",
            )
            timings.append(time.perf_counter() - started)
            time.sleep(0.05)
        return statistics.median(timings[5:])
    finally:
        stop(worker)


def stock(count: int) -> float:
    env = {
        "BROKER_URL": f"sqla+sqlite:///{VAR / 'bench-embedded-stock-broker.sqlite3'}",
        "BASELINE_BACKEND": "sqlalchemy",
        "BASELINE_RESULT_URL": f"db+sqlite:///{VAR / 'bench-embedded-stock-results.sqlite3'}",
    }
    os.environ.update(env)
    from bench.baseline import noop, worker_argv

    worker = start(
        worker_argv(2, "--without-heartbeat"),
        env,
    )
    try:
        noop.delay(0).get(timeout=60, interval=0.005)  # the worker is up
        timings = []
        for i in range(count):
            started = time.perf_counter()
            noop.delay(i).get(timeout=30, interval=0.002)
            timings.append(time.perf_counter() - started)
        return statistics.median(timings)
    finally:
        stop(worker)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="5 runs, in seconds (CI)")
    options = parser.parse_args()
    count = 5 if options.quick else options.runs
    print(ours(count), stock(max(1, count // 5)))
