"""Task Starter over several hosts: one for PostgreSQL and RabbitMQ, a web host, two task handler
hosts and two scheduler hosts, each a network namespace of its own (see cluster.py).

The tests run in order on one cluster; each leaves every link up and every process running as
it found them. Figures (spread, reconcile and take-over times) are printed
(bin/test runs these tests with -s).
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from tests.cluster.cluster import (
    HEARTBEAT_INTERVAL,
    SCHEDULER_LEASE_SECONDS,
    TASKS,
    WORKER_LOST_AFTER,
    Cluster,
    wait_until,
)

pytestmark = pytest.mark.cluster

FINISHED = {"SUCCESS", "FAILURE", "REVOKED"}


def _worker(cluster: Cluster, host: str) -> str:
    return f"{host}@{cluster.network.hosts[host].address}"


def _finished(cluster: Cluster, ids: list[str]) -> dict[str, dict[str, Any]] | None:
    runs = cluster.runs(ids)
    if len(runs) == len(ids) and all(run["status"] in FINISHED for run in runs.values()):
        return runs
    return None


def _report(name: str, value: Any) -> None:
    print(f"\n  {name}: {value}", end="")  # bin/test runs these with -s: the figures show


def test_runs_spread_over_both_handler_hosts(cluster: Cluster) -> None:
    started = time.monotonic()
    ids = [cluster.start_run("quick", {"number": number}) for number in range(300)]
    sent = time.monotonic() - started
    runs = wait_until(lambda: _finished(cluster, ids), 120, "300 runs to finish")
    elapsed = time.monotonic() - started

    assert Counter(run["status"] for run in runs.values()) == {"SUCCESS": 300}
    spread = Counter(run["worker"] for run in runs.values())
    assert set(spread) == {_worker(cluster, "handler1"), _worker(cluster, "handler2")}
    assert min(spread.values()) >= 90, f"one host took almost everything: {spread}"
    _report("spread", dict(spread))
    _report("starts_per_second", round(300 / sent, 1))
    _report("runs_per_second", round(300 / elapsed, 1))


def test_a_handler_host_cut_off_mid_run(cluster: Cluster) -> None:
    handler1, handler2 = _worker(cluster, "handler1"), _worker(cluster, "handler2")
    # Both long runs on handler1: stop handler2 while they are sent, then bring it back.
    cluster.processes["handler2-0"].stop()
    early = cluster.start_run("long_early", {"seconds": 26})
    late = cluster.start_run("long_late", {"seconds": 12})
    wait_until(
        lambda: all(
            run["status"] == "STARTED" and run["worker"] == handler1
            for run in cluster.runs([early, late]).values()
        ),
        30,
        "both long runs to start on handler1",
    )
    cluster.start_handler("handler2")
    cluster.wait_for_handlers("handler2")

    cut = time.monotonic()
    cluster.network.cut("handler1")
    try:
        # Early acknowledgement: nobody runs it again; the reconciler ends it for the lost host.
        wait_until(
            lambda: cluster.runs([early])[early]["reconciled_at"] is not None,
            WORKER_LOST_AFTER + 15,
            "the early-ack run to be reconciled",
        )
        reconciled_after = time.monotonic() - cut
        run = cluster.runs([early])[early]
        assert run["status"] == "FAILURE"
        assert f"more than {WORKER_LOST_AFTER:g} s" in run["reason"]
        # The host's last heartbeat came up to one interval before the cut.
        earliest = WORKER_LOST_AFTER - HEARTBEAT_INTERVAL
        assert earliest <= reconciled_after <= WORKER_LOST_AFTER + 6

        # Late acknowledgement: the broker gives the message to handler2, which finishes it.
        wait_until(
            lambda: cluster.runs([late])[late]["status"] == "SUCCESS",
            45,
            "the acks_late run to finish on handler2",
        )
        assert cluster.runs([late])[late]["worker"] == handler2
        # handler1 finishes both while cut off; only then does it come back.
        wait_until(lambda: time.monotonic() - cut > 27, 30, "handler1's runs to end")
    finally:
        cluster.network.restore("handler1")
    restored = time.monotonic()

    handler2_log = cluster.processes["handler2-1"].log()
    assert early not in handler2_log, "the early-ack run was run a second time"
    assert late in handler2_log

    # handler1 rejoins: its heartbeat resumes and its deferred reports arrive.
    cluster.wait_for_handlers("handler1", timeout=40)
    wait_until(
        lambda: cluster.runs([early])[early]["status"] == "SUCCESS",
        40,
        "handler1's report of the reconciled run",
    )
    caught_up_after = time.monotonic() - restored
    early_run, late_run = (cluster.runs([early, late])[key] for key in (early, late))
    # What really happened, and what had been decided: both.
    assert early_run["worker"] == handler1
    assert early_run["reconciled_at"] is not None
    assert "Ended at" in early_run["later_reports"]
    assert f"more than {WORKER_LOST_AFTER:g} s" in early_run["later_reports"]
    assert f"Then {handler1} reported it SUCCESS" in early_run["later_reports"]
    wait_until(
        lambda: handler1 in cluster.runs([late])[late]["later_reports"],
        30,
        "handler1's report of the run handler2 ran again",
    )
    late_run = cluster.runs([late])[late]
    assert late_run["status"] == "SUCCESS" and late_run["worker"] == handler2
    assert f"{handler1} also ran it" in late_run["later_reports"]

    # ... and takes work again.
    ids = [cluster.start_run("quick", {"number": number}) for number in range(40)]
    runs = wait_until(lambda: _finished(cluster, ids), 60, "runs after the rejoin")
    assert {run["status"] for run in runs.values()} == {"SUCCESS"}
    assert any(run["worker"] == handler1 for run in runs.values())

    _report("reconciled_after_cut_s", round(reconciled_after, 1))
    _report("history_caught_up_after_restore_s", round(caught_up_after, 1))


SENDING = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO celery\.beat: "
    r"Scheduler: Sending due task cluster tick",
    re.MULTILINE,
)


def _dispatches(log: str) -> list[float]:
    return [
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        for stamp in SENDING.findall(log)
    ]


def test_two_schedulers_one_dispatches_and_the_other_takes_over(
    cluster: Cluster,
) -> None:
    first = cluster.start_scheduler("scheduler1")
    wait_until(lambda: "holds the dispatch lease" in first.log(), 60, "scheduler1 to lead")
    second = cluster.start_scheduler("scheduler2")
    wait_until(lambda: "beat: Starting" in second.log(), 60, "scheduler2 to start")
    time.sleep(6)
    assert not _dispatches(second.log()), "the standby scheduler dispatched"

    cut = time.time()
    cluster.network.cut("scheduler1")
    try:
        wait_until(
            lambda: "holds the dispatch lease" in second.log(),
            SCHEDULER_LEASE_SECONDS + 10,
            "scheduler2 to take over",
        )
        time.sleep(6)
    finally:
        cluster.network.restore("scheduler1")
    time.sleep(6)  # scheduler1 is back: it must stand by, not dispatch again
    first.stop()
    second.stop()
    time.sleep(2)  # the last dispatches finish

    by_first, by_second = _dispatches(first.log()), _dispatches(second.log())
    assert by_first and by_second
    assert max(by_first) < cut + 1, "scheduler1 dispatched after it was cut off"
    assert min(by_second) > cut
    assert "lost the dispatch lease" in first.log()  # and, back on the network, stood by
    took_over_after = min(by_second) - cut

    # Every dispatch ran once: no tick twice, none lost, one a second except at the take-over.
    ticks = sorted(
        started.timestamp()
        for (started,) in cluster.rows(
            "SELECT started_at FROM limepkg_task_starter_taskrun WHERE task_name = %s "
            "AND status = 'SUCCESS'",
            (f"{TASKS}.tick",),
        )
    )
    assert len(ticks) == len(by_first) + len(by_second)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert min(gaps) > 0.5, f"a tick ran twice: {gaps}"
    assert max(gaps) < SCHEDULER_LEASE_SECONDS + 4, f"ticks were missed: {gaps}"
    _report("scheduler_take_over_s", round(took_over_after, 1))
    _report("scheduled_runs", len(ticks))


def test_database_cut_off_from_a_handler_for_ten_seconds(
    cluster: Cluster,
) -> None:
    handler1 = _worker(cluster, "handler1")
    ids = [cluster.start_run("long_early", {"seconds": 3}) for _ in range(4)]
    wait_until(
        lambda: (
            all(run["status"] == "STARTED" for run in cluster.runs(ids).values())
            and len(cluster.runs(ids)) == 4
        ),
        30,
        "four runs to start",
    )
    on_handler1 = [key for key, run in cluster.runs(ids).items() if run["worker"] == handler1]
    assert on_handler1, "no run started on handler1"

    cluster.network.blackhole("handler1", cluster.database_address)
    try:
        time.sleep(10)
        # Its runs have finished, but the history cannot know yet.
        assert {cluster.runs(on_handler1)[key]["status"] for key in on_handler1} == {"STARTED"}
    finally:
        cluster.network.unblackhole("handler1", cluster.database_address)
    restored = time.monotonic()
    runs = wait_until(lambda: _finished(cluster, ids), 40, "the history to catch up")
    caught_up_after = time.monotonic() - restored

    for key in on_handler1:
        run = runs[key]
        assert run["status"] == "SUCCESS", run
        assert run["reconciled_at"] is None
        # The time it finished on the handler, not when the database heard of it.
        assert 2.5 < (run["finished_at"] - run["started_at"]).total_seconds() < 6
    _report("database_outage_caught_up_after_s", round(caught_up_after, 1))
