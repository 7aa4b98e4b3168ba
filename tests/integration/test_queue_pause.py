"""Pausing a queue with real task handlers, on whichever broker the suite runs (Redis, RabbitMQ,
the embedded one): runs sent to a paused queue wait in the broker and go when it is resumed;
a handler started while it is paused does not take them; what a handler had already taken
before the pause is put back, not run.

Each test routes to a queue of its own (``__queue``), consumed only by its own handlers, and
pauses it with a ``QueuePause`` row, which is what ``services.queues.queue_pause`` writes (that
service, its checks and its audit are tested in tests/limepkg_task_starter/test_queue_pause.py).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from django.utils import timezone

from lime_task import LimeApplication, send_task
from limepkg_task_starter.models import QueuePause, TaskRun, WorkerHeartbeat
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration
TASKS = "tests.reference_solution.tasks.my_task_file"
# Issue #21: handlers stop taking new runs from a paused queue within 5 s.
PAUSE_TAKES_HOLD_WITHIN = 5.0
# How long a run must stay waiting while its queue is paused, to call it waiting.
WAITS_FOR = 6.0


def own_queue() -> str:
    return f"pause-{uuid.uuid4().hex[:8]}"


def pause(queue: str) -> None:
    QueuePause.objects.create(queue=queue, paused_at=timezone.now(), paused_by_username="ops")


def resume(queue: str) -> None:
    QueuePause.objects.filter(queue=queue).update(resumed_at=timezone.now())


def consumed(handler: WorkerProcess) -> list[str]:
    """The queues the handler consumes, as its latest heartbeat says (every 0.5 s in tests)."""
    return WorkerHeartbeat.objects.get(hostname=handler.hostname).queues or []


def status(run_id: str) -> str:
    return TaskRun.objects.values_list("status", flat=True).get(id=run_id)


def stays_pending(run_id: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert status(run_id) == "PENDING", TaskRun.objects.get(id=run_id).__dict__
        time.sleep(0.2)


def finishes(run_id: str, timeout: float = 20) -> TaskRun:
    return wait_for(
        lambda: TaskRun.objects.filter(id=run_id, status="SUCCESS").first(),
        timeout,
        what=f"run {run_id} to succeed",
    )


def test_a_run_sent_to_a_paused_queue_waits_and_runs_on_resume(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    queue = own_queue()
    handler = own_worker(concurrency=1, queues=queue)
    assert consumed(handler) == [queue]

    paused_at = time.monotonic()
    pause(queue)
    wait_for(lambda: consumed(handler) == [], PAUSE_TAKES_HOLD_WITHIN, what="the pause to hold")
    print(f"pause held after {time.monotonic() - paused_at:.2f} s")

    sent = send_task(f"{TASKS}.dummy_task", live_demo_app, 2, 3, __queue=queue)
    stays_pending(sent.id, WAITS_FOR)

    resume(queue)
    run = finishes(sent.id)
    assert (run.result, run.worker, run.queue) == (30, handler.hostname, queue)
    wait_for(lambda: consumed(handler) == [queue], 2, what="the next heartbeat to say so")


def test_a_run_already_started_finishes_while_the_next_waits(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    queue = own_queue()
    own_worker(concurrency=1, queues=queue)
    running = send_task(f"{TASKS}.sleeper", live_demo_app, 3, __queue=queue)
    wait_for(lambda: status(running.id) == "STARTED", 20, what="the first run to start")

    pause(queue)
    waiting = send_task(f"{TASKS}.dummy_task", live_demo_app, 1, 1, __queue=queue)

    assert finishes(running.id).result == "slept 3"
    stays_pending(waiting.id, WAITS_FOR)
    resume(queue)
    assert finishes(waiting.id).result == 5


def test_a_handler_started_while_the_queue_is_paused_does_not_take_its_runs(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    queue = own_queue()
    pause(queue)
    sent = send_task(f"{TASKS}.dummy_task", live_demo_app, 2, 2, __queue=queue)

    handler = own_worker(concurrency=1, queues=queue)
    assert consumed(handler) == []
    stays_pending(sent.id, WAITS_FOR)

    resume(queue)
    assert finishes(sent.id).worker == handler.hostname


def test_runs_the_handler_had_prefetched_are_put_back_not_run(
    own_worker: Callable[..., WorkerProcess], live_demo_app: LimeApplication
) -> None:
    """With one pool process busy, the handler holds the next runs in memory (Celery's
    prefetch); paused meanwhile, they go back to the broker unrun and wait there."""
    queue = own_queue()
    own_worker(concurrency=1, queues=queue)
    busy = send_task(f"{TASKS}.sleeper", live_demo_app, 3, __queue=queue)
    wait_for(lambda: status(busy.id) == "STARTED", 20, what="the first run to start")
    queued = [
        send_task(f"{TASKS}.dummy_task", live_demo_app, n, 1, __queue=queue).id for n in range(3)
    ]
    time.sleep(1.0)  # taken from the broker by now (prefetch), waiting for the pool

    pause(queue)
    finishes(busy.id)
    for run_id in queued:
        stays_pending(run_id, 1.0)
    stays_pending(queued[-1], WAITS_FOR - 3 * 1.0)

    resume(queue)
    assert [finishes(run_id).result for run_id in queued] == [0, 5, 10]
