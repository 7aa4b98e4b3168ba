"""Throughput over several hosts: the multi-host test's cluster (tests/cluster), measured.

    .venv/bin/python bench/cluster.py             # 2,000 runs per measurement (about 3 minutes)
    .venv/bin/python bench/cluster.py --runs 500  # fewer runs
    .venv/bin/python bench/cluster.py --quick     # 50 runs per measurement (CI)

Needs root (network namespaces), PostgreSQL's server programs and RabbitMQ installed; it starts
its own instances on the cluster's database host. Where it cannot make the hosts (not root, no
namespaces, a server program missing) it says why and fails, except that ``--quick`` then exits
0, as the multi-host test skips.

Prints, for one and for two task handler hosts (one worker process each, ``-c 1``: a host stands
for one core's worth of handler):

* starts/s: runs started through the web host's API by 8 concurrent clients;
* runs/s: how fast the handlers drain a queue of that many runs, from the first start to the
  last finish recorded in the history;
* the same drain for plain Celery (django-celery-results on the same PostgreSQL, as in
  ``bench/run.py``'s throughput measure), on the same hosts, broker and database.

Every host shares this machine's cores, so two handler hosts cannot show more than the cores
left over by the database, the broker and the web host; the capacity plan
(docs/explanation/capacity-plan.md) says how to read the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
os.environ.setdefault("BROKER_URL", "memory://")  # bench.baseline builds an app on import

from bench.baseline import BASELINE_QUEUE  # noqa: E402
from bench.baseline import worker_argv as baseline_worker_argv  # noqa: E402
from bench.environment import end_on_sigterm  # noqa: E402
from tests.cluster import network, services  # noqa: E402
from tests.cluster.cluster import Cluster, build_cluster, wait_until  # noqa: E402

HANDLERS = ("handler1", "handler2")
CLIENTS = 8


def start_runs(cluster: Cluster, count: int) -> float:
    """Start ``count`` quick runs through the API; starts per second."""
    started = time.monotonic()
    with ThreadPoolExecutor(CLIENTS) as pool:
        ids = list(pool.map(lambda n: cluster.start_run("quick", {"number": n}), range(count)))
    assert len(set(ids)) == count
    return count / (time.monotonic() - started)


def drain_ours(cluster: Cluster, hosts: tuple[str, ...], count: int) -> tuple[float, float]:
    """Start ``count`` runs with no handler running, then drain them: (starts/s, runs/s)."""
    cluster.execute("DELETE FROM limepkg_task_starter_taskrun")
    starts_per_second = start_runs(cluster, count)
    handlers = [cluster.start_handler(host, concurrency=1) for host in hosts]
    wait_until(
        lambda: (
            cluster.scalar(
                "SELECT count(*) FROM limepkg_task_starter_taskrun WHERE status = 'SUCCESS'"
            )
            >= count
        ),
        600,
        f"{count} runs to finish",
    )
    for handler in handlers:
        handler.stop()
    first, last = cluster.rows(
        "SELECT min(started_at), max(finished_at) FROM limepkg_task_starter_taskrun"
    )[0]
    spread = dict(
        cluster.rows("SELECT worker, count(*) FROM limepkg_task_starter_taskrun GROUP BY 1")
    )
    print(f"    ours on {len(hosts)} host(s): spread {spread}")
    return starts_per_second, float(count / (last - first).total_seconds())


def bytes_per_row(cluster: Cluster, table: str) -> float:
    """Table, indexes and TOAST per row, compacted first (no dead rows from earlier rounds)."""
    cluster.execute(f"VACUUM FULL {table}")
    size, rows = cluster.rows(f"SELECT pg_total_relation_size('{table}'), count(*) FROM {table}")[0]
    return float(size / rows) if rows else 0.0


def drain_plain(cluster: Cluster, hosts: tuple[str, ...], count: int) -> float:
    from celery import Celery

    cluster.execute("DELETE FROM django_celery_results_taskresult")
    sender = Celery("baseline", broker=cluster.environment()["BROKER_URL"])
    for number in range(count):
        sender.send_task("baseline.noop", args=[number], queue=BASELINE_QUEUE)
    workers = [
        cluster.start_process(
            host,
            f"{host}-plain",
            baseline_worker_argv(1, "--loglevel", "WARNING"),
            BASELINE_BACKEND="django-db",
        )
        for host in hosts
    ]
    wait_until(
        lambda: (
            cluster.scalar(
                "SELECT count(*) FROM django_celery_results_taskresult WHERE status = 'SUCCESS'"
            )
            >= count
        ),
        600,
        f"{count} plain Celery tasks to finish",
    )
    for worker in workers:
        worker.stop()
    first, last = cluster.rows(
        "SELECT min(date_created), max(date_done) FROM django_celery_results_taskresult"
    )[0]
    return float(count / (last - first).total_seconds())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--quick", action="store_true", help="50 runs per measurement (CI)")
    options = parser.parse_args()
    count = 50 if options.quick else options.runs
    reason = network.unavailable_reason() or services.unavailable_reason()
    if reason:
        message = f"bench/cluster.py needs hosts and servers of its own: {reason}"
        if options.quick:
            print(f"{message}; skipped")
            return
        sys.exit(message)

    end_on_sigterm()
    cluster = build_cluster(handlers=())
    print(
        f"Cluster up in {cluster.directory}; {count} runs per measurement, {os.cpu_count()} cores"
    )
    try:
        figures, starts = {}, []
        for hosts in (HANDLERS[:1], HANDLERS):
            started, ours = drain_ours(cluster, hosts, count)
            plain = drain_plain(cluster, hosts, count)
            figures[len(hosts)] = (ours, plain)
            starts.append(started)
            print(f"  {len(hosts)} handler host(s): ours {ours:.0f} runs/s, plain {plain:.0f}/s")
        run_bytes = bytes_per_row(cluster, "limepkg_task_starter_taskrun")
        audit_rows = cluster.scalar("SELECT count(*) FROM limepkg_task_starter_auditentry")
        audit_bytes = bytes_per_row(cluster, "limepkg_task_starter_auditentry")
    except BaseException:
        cluster.destroy()
        print(f"The cluster's logs are kept in {cluster.directory}")
        raise
    cluster.destroy()
    shutil.rmtree(cluster.directory, ignore_errors=True)  # its servers' data: tens of MB a run

    print()
    print("| handler hosts (-c 1 each) | Task Starter runs/s | plain Celery runs/s | ratio |")
    print("| --- | --- | --- | --- |")
    for hosts, (ours, plain) in figures.items():
        print(f"| {hosts} | {ours:.0f} | {plain:.0f} | {ours / plain:.2f}× |")
    ours_scaling = figures[2][0] / figures[1][0]
    plain_scaling = figures[2][1] / figures[1][1]
    print(f"| 1 → 2 hosts | {ours_scaling:.2f}× | {plain_scaling:.2f}× | |")
    print(
        f"\nStorage per started run: {run_bytes:.0f} bytes of run history and "
        f"{audit_bytes:.0f} bytes of audit ({audit_rows} entries), indexes included"
    )
    print(
        f"Starts through the web host's API ({CLIENTS} clients, 2 gunicorn workers): "
        + ", ".join(f"{value:.0f}/s" for value in starts)
    )


if __name__ == "__main__":
    main()
