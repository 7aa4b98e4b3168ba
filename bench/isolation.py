"""Priority isolation: asap latency while a backlog of slow background tasks waits, with
dedicated task handlers per queue and with one all-in-one task handler.

    .venv/bin/python bench/isolation.py [--backlog 1000] [--samples 50]
    .venv/bin/python bench/isolation.py --quick    # a backlog of 20, 5 samples (CI)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lime_task
from bench.run import percentile, poll_until_done, purge, reset_database, start_our_worker

PING = "bench.solution.tasks.priorities.ping"
SLOW = "bench.solution.tasks.priorities.slow"
ASAP, BACKGROUND = "lime_task_queue_asap", "lime_task_queue_background"


def asap_latencies(samples: int) -> list[float]:
    app = lime_task.LimeApplication("bench")
    timings = []
    for _ in range(samples):
        started = time.perf_counter()
        sent = lime_task.send_task(PING, app)
        poll_until_done(sent.id, 0.001, timeout=120)
        timings.append(time.perf_counter() - started)
    return timings


def scenario(name: str, workers: list[tuple[str, int]], backlog: int, samples: int) -> None:
    reset_database()
    purge()
    started = []
    try:
        for queues, concurrency in workers:
            started.append(start_our_worker(concurrency, queues))
        asap_latencies(5)  # warm up
        idle = percentile(asap_latencies(samples), 95)
        app = lime_task.LimeApplication("bench")
        for _ in range(backlog):
            lime_task.send_task(SLOW, app, 0.1)
        loaded = percentile(asap_latencies(samples), 95)
    finally:
        purge()
        for worker in started:
            worker.stop()
    print(
        f"| {name} | {idle * 1e3:.1f} ms | {loaded * 1e3:.1f} ms | {loaded / idle:.2f}× |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backlog", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="a backlog of 20, 5 samples (CI)")
    options = parser.parse_args()
    if options.quick:
        options.backlog, options.samples = 20, 5
    print(
        f"asap p95 start → SUCCESS, idle vs with {options.backlog:,} slow background tasks "
        "queued (Redis, PostgreSQL; target ≤ 2× with dedicated handlers)"
    )
    print("| task handlers | idle p95 | loaded p95 | ratio |")
    print("| --- | --- | --- | --- |")
    scenario(
        "dedicated: asap -c 1, background -c 1",
        [(ASAP, 1), (BACKGROUND, 1)],
        options.backlog,
        options.samples,
    )
    scenario(
        "all-in-one: both queues -c 2",
        [(f"{ASAP},{BACKGROUND}", 2)],
        options.backlog,
        options.samples,
    )


if __name__ == "__main__":
    main()
