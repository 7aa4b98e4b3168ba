"""What the broker and the task handlers say about themselves, for the workers and queues page.

Both are asked at the moment the page is read, with short timeouts: a broker that is down, or
one that cannot broadcast (the embedded one), leaves its columns empty with the reason, never
a failed page.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from celery import current_app

logger = logging.getLogger(__name__)

ASK_SECONDS = 1.0
NO_BROADCAST = (
    "The embedded broker cannot ask task handlers: what they consume is as of their last heartbeat."
)


def queue_depths(names: list[str]) -> dict[str, tuple[int, int] | str]:
    """Messages waiting and consumers, per queue, as the broker counts them (a passive declare:
    nothing is created). A queue the broker does not know yet has nothing waiting. Only
    RabbitMQ counts consumers; Redis keeps no such count and always says 0."""
    depths: dict[str, tuple[int, int] | str] = {}
    try:
        with current_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=int(ASK_SECONDS))
            for name in names:
                channel: Any = connection.channel()
                try:
                    _, messages, consumers = channel.queue_declare(queue=name, passive=True)
                    depths[name] = (int(messages), int(consumers))
                except Exception as error:  # not declared yet, on RabbitMQ: nothing waits
                    depths[name] = (0, 0) if "NOT_FOUND" in str(error) else str(error)
                finally:
                    _close(channel)
    except Exception as error:  # the broker is away: the page says so
        logger.warning("Could not read queue depths: %s", error)
        return dict.fromkeys(names, f"The broker did not answer: {error}")
    return depths


def _close(channel: Any) -> None:
    with contextlib.suppress(Exception):  # a channel the broker has already closed
        channel.close()


def can_broadcast() -> bool:
    return not str(current_app.conf.broker_url).startswith("embedded")


def worker_replies(*, expected: int) -> dict[str, Any]:
    """Each live task handler's queues and pool size: two broadcasts, each over as soon as the
    ``expected`` handlers have answered, or after ASK_SECONDS."""
    if not can_broadcast() or expected == 0:
        return {}
    try:
        inspect = current_app.control.inspect(timeout=ASK_SECONDS, limit=expected)
        queues: dict[str, Any] = inspect.active_queues() or {}
        stats: dict[str, Any] = inspect.stats() or {}
    except Exception as error:
        logger.warning("Could not ask the task handlers: %s", error)
        return {}
    return {
        hostname: {
            "queues": sorted(queue["name"] for queue in queues.get(hostname, [])),
            "concurrency": (stats.get(hostname) or {}).get("pool", {}).get("max-concurrency"),
        }
        for hostname in set(queues) | set(stats)
    }
