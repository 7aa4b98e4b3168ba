"""Worker side: a task handler stops consuming a paused queue and takes it up again on resume.

The pauses are rows in the database (``services.queues``), so they hold on every broker, across
restarts and for handlers started later. A handler leaves paused queues out before its consumer
starts (``celeryd_after_setup``), then compares the rows with what it consumes about every
second, from its maintenance thread (``tracking.Maintenance``).

The change itself is Celery's ``cancel_task_queue`` / ``add_task_queue`` (what the
``cancel_consumer`` / ``add_consumer`` control commands do), run in the consumer's own thread
through ``consumer.call_soon``: the broker connection is not thread-safe, and the embedded
broker cannot receive control commands. Runs already started finish; waiting ones stay in the
broker. What the handler had already prefetched is seen to in ``tracking.on_task_prerun``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import signals
from django.db import DatabaseError, connection

from lime_task import headers
from lime_task.decorator import STAND_DOWN
from limepkg_task_starter import selectors

logger = logging.getLogger(__name__)

# How often a handler compares the stored pauses with what it consumes. With the consumer's own
# loop (at most 2 s to pick the change up on the embedded broker, at once on Redis and
# RabbitMQ), a pause takes hold within 5 s.
CHECK_EVERY_SECONDS = 1.0


def _consumed(app: Any) -> set[str]:
    return set(app.amqp.queues.consume_from)


class QueueGate:
    """What one handler stopped consuming for a pause, so that it resumes only those (a queue
    it was never told to consume stays unconsumed)."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer
        self.held: set[str] = set()

    def sync(self, paused: set[str]) -> None:
        """Stop consuming newly paused queues, take resumed ones up again."""
        consumer = self.consumer
        for queue in sorted((paused & _consumed(consumer.app)) - self.held):
            logger.info("Queue %s is paused: no new runs are taken from it", queue)
            self.held.add(queue)
            consumer.call_soon(_cancel, consumer, queue)
        for queue in sorted(self.held - paused):
            logger.info("Queue %s is resumed: its runs are taken again", queue)
            self.held.discard(queue)
            consumer.call_soon(_add, consumer, queue)


def _cancel(consumer: Any, queue: str) -> None:
    if queue in _consumed(consumer.app):  # an operator's cancel_consumer may have come first
        consumer.cancel_task_queue(queue)


def _add(consumer: Any, queue: str) -> None:
    consumer.add_task_queue(queue)


# Left out at start, before the consumer exists: the maintenance thread's gate takes them over.
_held_at_start: set[str] = set()


@signals.celeryd_after_setup.connect
def leave_out_paused_queues(sender: Any = None, instance: Any = None, **_: Any) -> None:
    """A handler started while a queue is paused does not consume it, not even for a moment."""
    app = getattr(instance, "app", None)
    if app is None:
        return
    try:
        paused = selectors.paused_queue_names()
    except DatabaseError:
        logger.exception("Could not read the paused queues at start; checking again shortly")
        return
    finally:
        connection.close()  # not handed to the pool's forked processes
    left_out = paused & _consumed(app)
    if left_out:
        app.amqp.queues.deselect(sorted(left_out))
        _held_at_start.update(left_out)
        logger.info("Paused queues not consumed: %s", ", ".join(sorted(left_out)))


def gate_for(consumer: Any) -> QueueGate:
    gate = QueueGate(consumer)
    gate.held.update(_held_at_start)
    _held_at_start.clear()
    return gate


# --- What the handler had already taken before the pause --------------------------------------

# A pool process reads the pauses at most this often, when it is about to start a run.
PUT_BACK_CHECK_SECONDS = 1.0
PUT_BACK = "lime_put_back"  # set on the request of a run sent back to its paused queue
_paused_seen: tuple[float, frozenset[str]] = (float("-inf"), frozenset())


def _paused_now() -> frozenset[str]:
    global _paused_seen
    read_at, paused = _paused_seen
    if time.monotonic() - read_at >= PUT_BACK_CHECK_SECONDS:
        try:
            paused = frozenset(selectors.paused_queue_names())
        except DatabaseError:
            logger.warning("Could not read the paused queues; the run goes ahead")
            return paused
        _paused_seen = (time.monotonic(), paused)
    return paused


def queue_of(task: Any) -> str:
    """The queue a run came from: the router's header, else the queue its routing key names."""
    request = task.request
    named = (request.headers or {}).get(headers.QUEUE_NAME)
    if named:
        return str(named)
    key = (request.delivery_info or {}).get("routing_key") or ""
    for queue in task.app.amqp.queues.values():
        if queue.routing_key == key:
            return str(queue.name)
    return str(key)


def put_back_if_paused(task: Any, queue: str) -> bool:
    """A run about to start from a paused queue goes back to that queue, unrun, and its record
    stays Pending: the handler had taken it from the broker before the pause (prefetch).

    It is sent again with the same id, arguments and headers, so it keeps its place in the
    history; in the queue it is behind the runs that were waiting there.
    """
    if not queue or queue not in _paused_now():
        return False
    request = task.request
    task.apply_async(
        tuple(request.args or ()),
        dict(request.kwargs or {}),
        task_id=request.id,
        queue=queue,
        headers=dict(request.headers or {}),
    )
    setattr(request, STAND_DOWN, True)
    setattr(request, PUT_BACK, True)
    logger.info("Task %s [%s]: queue %s is paused; put back unrun", task.name, request.id, queue)
    return True
