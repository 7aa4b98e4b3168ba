"""Task Starter against plain Celery, measured in one run on this machine.

    .venv/bin/python bench/run.py            # everything (a few minutes)
    .venv/bin/python bench/run.py --quick    # every measure with small counts, in seconds (CI)

Needs Redis and PostgreSQL on 127.0.0.1 (``bin/services`` starts them). Uses its own database,
``taskstarter_bench``, which it creates and empties, and Redis db 2 (see bench/environment.py).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.environment import PROJECT_DIR, set_up_django, wait

set_up_django()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_celery_results.models import TaskResult  # noqa: E402

import lime_task  # noqa: E402
from bench.baseline import BASELINE_QUEUE  # noqa: E402
from bench.baseline import app as baseline_app  # noqa: E402
from bench.baseline import noop as baseline_noop  # noqa: E402
from bench.baseline import worker_argv as baseline_worker_argv  # noqa: E402
from bench.history import insert_runs  # noqa: E402
from limepkg_task_starter.db import save_task_id  # noqa: E402
from limepkg_task_starter.models import Application, TaskRun, WorkerHeartbeat  # noqa: E402
from taskstarter.celery import app as celery_app  # noqa: E402

NOOP = "bench.solution.tasks.trivial.noop"
RESULTS: list[tuple[str, str, str, str, str]] = []


def report(name: str, ours: str, plain: str, ratio: str, target: str) -> None:
    RESULTS.append((name, ours, plain, ratio, target))
    print(f"  {name}: ours {ours} | plain Celery {plain} | {ratio} (target {target})", flush=True)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


class Worker:
    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.log = open(PROJECT_DIR / "var" / f"bench-worker-{uuid.uuid4().hex[:6]}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_DIR,
            env={**os.environ, **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, ready: Callable[[], object]) -> None:
        """Until ``ready()``; a worker that never gets there (or a timeout's SIGTERM meanwhile)
        is stopped, since no caller holds it yet."""
        try:
            wait(ready, 60)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def start_our_worker(concurrency: int = 2, queues: str | None = None) -> Worker:
    hostname = f"bench-{uuid.uuid4().hex[:6]}@localhost"
    worker = Worker(
        [
            sys.executable,
            "manage.py",
            "taskhandler",
            "--concurrency",
            str(concurrency),
            "--hostname",
            hostname,
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
            *(["--queues", queues] if queues else []),
        ]
    )
    worker.wait_ready(lambda: WorkerHeartbeat.objects.filter(hostname=hostname).exists())
    return worker


def start_baseline_worker(backend: str, concurrency: int = 2) -> Worker:
    worker = Worker(
        baseline_worker_argv(concurrency, "--without-heartbeat", "--loglevel", "WARNING"),
        env={"BASELINE_BACKEND": backend},
    )
    worker.wait_ready(lambda: baseline_app.control.ping(timeout=0.5))
    return worker


def poll_until_done(run_id: str, interval: float, timeout: float = 30) -> None:
    """Read a run's status in a tight loop until it succeeds; any other end, or none within
    ``timeout`` seconds, fails the benchmark."""
    deadline = time.monotonic() + timeout
    while not (status := lime_task.get_status(run_id, "bench")).is_completed():
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} still {status.status} after {timeout:g} s")
        time.sleep(interval)
    if status.status != "SUCCESS":
        raise RuntimeError(f"benchmark run {run_id} ended {status.status}")


def purge() -> None:
    celery_app.control.purge()
    with baseline_app.connection_for_write() as conn:
        conn.default_channel.queue_purge(BASELINE_QUEUE)


def reset_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE limepkg_task_starter_taskrun, django_celery_results_taskresult CASCADE"
        )
    Application.objects.get_or_create(name="bench", config={})


# --- (a) dispatch -------------------------------------------------------------------------


def bench_send(count: int) -> None:
    app = lime_task.LimeApplication("bench")
    ours: list[float] = []
    plain: list[float] = []
    for _ in range(3):  # interleaved rounds; each side's best round counts
        started = time.perf_counter()
        for i in range(count):
            lime_task.send_task(NOOP, app, i)
        ours.append((time.perf_counter() - started) / count)
        started = time.perf_counter()
        for i in range(count):
            baseline_app.send_task("baseline.noop", args=[i], queue=BASELINE_QUEUE)
        plain.append((time.perf_counter() - started) / count)
    purge()
    report(
        "(a) send per call",
        f"{min(ours) * 1e6:.0f} µs",
        f"{min(plain) * 1e6:.0f} µs",
        f"{min(ours) / min(plain):.2f}×",
        "≤ 1.5×",
    )


# --- (b) start → SUCCESS --------------------------------------------------------------------


def bench_latency(count: int, warm_up: int) -> None:
    app = lime_task.LimeApplication("bench")
    worker = start_our_worker()
    polled, waited = [], []
    try:
        for i in range(count + warm_up):
            # Read with get_status in a tight loop...
            started = time.perf_counter()
            sent = lime_task.send_task(NOOP, app, i)
            poll_until_done(sent.id, 0.0005)
            polled.append(time.perf_counter() - started)
            # ...and with wait_for_status, woken by the worker's notification.
            started = time.perf_counter()
            sent = lime_task.send_task(NOOP, app, i)
            if lime_task.wait_for_status(sent.id, "bench", timeout=10).status != "SUCCESS":
                raise RuntimeError("benchmark run did not succeed")
            waited.append(time.perf_counter() - started)
    finally:
        worker.stop()
    worker = start_baseline_worker("redis")
    plain = []
    try:
        for i in range(count + warm_up):
            started = time.perf_counter()
            baseline_noop.delay(i).get(timeout=10)
            plain.append(time.perf_counter() - started)
    finally:
        worker.stop()
    plain = plain[warm_up:]
    for how, ours in (
        ("get_status polled", polled[warm_up:]),
        ("wait_for_status", waited[warm_up:]),
    ):
        for pct in (50, 99):
            o, p = percentile(ours, pct), percentile(plain, pct)
            report(
                f"(b) start → SUCCESS p{pct}, {how}",
                f"{o * 1e3:.2f} ms",
                f"{p * 1e3:.2f} ms",
                f"{o / p:.2f}×",
                "p50 ≤ 2×" if pct == 50 else "-",
            )


# --- (c) throughput -------------------------------------------------------------------------


def bench_throughput(count: int) -> None:
    reset_database()
    purge()
    app = lime_task.LimeApplication("bench")
    for i in range(count):
        lime_task.send_task(NOOP, app, i)
    worker = start_our_worker()
    try:
        wait(lambda: TaskRun.objects.filter(status="SUCCESS").count() >= count, 600, 0.2)
    finally:
        worker.stop()
    runs = TaskRun.objects.order_by()
    first = min(runs.values_list("started_at", flat=True))
    last = max(runs.values_list("finished_at", flat=True))
    ours = count / (last - first).total_seconds()

    for i in range(count):
        baseline_app.send_task("baseline.noop", args=[i], queue=BASELINE_QUEUE)
    worker = start_baseline_worker("django-db")
    try:
        wait(lambda: TaskResult.objects.filter(status="SUCCESS").count() >= count, 600, 0.2)
    finally:
        worker.stop()
    results = TaskResult.objects.order_by()
    first = min(results.values_list("date_created", flat=True))
    last = max(results.values_list("date_done", flat=True))
    plain = count / (last - first).total_seconds()
    report(
        f"(c) throughput, {count} tasks, -c 2",
        f"{ours:.0f}/s",
        f"{plain:.0f}/s",
        f"{ours / plain:.2f}×",
        "≥ 1.0×",
    )


# --- (d) embedded default -------------------------------------------------------------------


def bench_embedded(options: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "bench/embedded.py", *options],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "BROKER_URL"}},
    )
    if done.returncode:
        raise RuntimeError(done.stdout + done.stderr)
    ours, plain = (float(x) for x in done.stdout.split()[-2:])
    report(
        "(d) embedded start → STARTED p50",
        f"{ours * 1e3:.0f} ms",
        f"{plain * 1e3:.0f} ms (stock sqla+sqlite → SUCCESS)",
        f"{ours / plain:.2f}×",
        "≤ 250 ms",
    )


# --- (e) recording cost as the table grows -------------------------------------------------


def time_recording(count: int) -> float:
    timings = []
    for _ in range(count):
        task_id = str(uuid.uuid4())
        started = time.perf_counter()
        save_task_id("bench", NOOP, task_id, {"number": 1})
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def bench_recording(count: int, rows: int) -> None:
    reset_database()
    application = Application.objects.get(name="bench")
    small = time_recording(count)
    print(f"  filling the history table with {rows:,} rows...", flush=True)
    insert_runs(
        {
            "id": "'fill-' || i",
            "application_name": "%s",
            "task_name": "'bench.task_' || (i %% 1000)",
            "status": "'SUCCESS'",
            "created_at": "now() - make_interval(secs => i)",
        },
        [application.name],
        rows,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE limepkg_task_starter_taskrun")
    large = time_recording(count)
    report(
        f"(e) recording, 10 vs {rows:,} rows",
        f"{large * 1e6:.0f} µs at {rows:,}",
        f"{small * 1e6:.0f} µs at 10 (same code)",
        f"{large / small:.2f}×",
        "≤ 1.2×",
    )
    reset_database()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="every measure with small counts, in seconds (CI)"
    )
    parser.add_argument("--only", default="abcde", help="which measures, e.g. --only ae")
    options = parser.parse_args()
    quick = options.quick
    call_command("migrate", verbosity=0)
    reset_database()
    purge()
    print(f"Task Starter vs plain Celery on Redis + PostgreSQL ({os.cpu_count()} cores)")
    measures = {
        "a": lambda: bench_send(100 if quick else 2000),
        "b": lambda: bench_latency(20, 5) if quick else bench_latency(300, 20),
        "c": lambda: bench_throughput(100 if quick else 3000),
        "d": lambda: bench_embedded(["--quick"] if quick else ["--runs", "50"]),
        "e": lambda: bench_recording(50 if quick else 500, 5_000 if quick else 1_000_000),
    }
    failed = []
    for letter, run in measures.items():
        if letter in options.only:
            # One broken measure must not hide the others (CI runs them all): its traceback
            # now, the run's failure at the end.
            try:
                run()
            except Exception:
                traceback.print_exc()
                failed.append(f"({letter})")
    print()
    print("| measure | Task Starter | plain Celery | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for row in RESULTS:
        print("| " + " | ".join(row) + " |")
    if failed:
        sys.exit(f"measure {', '.join(failed)} failed")


if __name__ == "__main__":
    main()
