"""Task events: after each run, ``core.task.{task_name}.success.v1`` or ``.failure.v1`` on the
broker's topic exchange, and the handlers that react to them.

Patterns follow AMQP topics, with one difference that makes the reference's
``core.task.*.failure.v1`` work: task names contain dots, so ``*`` here matches one *or more*
words (a whole task name); ``#`` matches zero or more.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from celery import Celery
from kombu import Exchange
from kombu.exceptions import OperationalError as BrokerError

logger = logging.getLogger(__name__)

EXCHANGE_NAME = "lime_task_events"
Outcome = Literal["success", "failure"]
Handler = Callable[[dict[str, Any]], None]

exchange = Exchange(EXCHANGE_NAME, type="topic", durable=True)


def routing_key(task_name: str, outcome: Outcome) -> str:
    return f"core.task.{task_name}.{outcome}.v1"


@lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    words = []
    for word in pattern.split("."):
        words.append({"*": r"[^.]+(?:\.[^.]+)*", "#": r".*"}.get(word, re.escape(word)))
    return re.compile(r"\.".join(words).replace(r"\..*", r"(?:\..*)?") + r"\Z")


def matches(pattern: str, key: str) -> bool:
    return _pattern_regex(pattern).match(key) is not None


def broker_binding(pattern: str) -> str:
    """What to bind on the broker: a superset (``#`` for ``*``), filtered again by ``matches``."""
    return ".".join("#" if word == "*" else word for word in pattern.split("."))


# --- Handlers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Registration:
    pattern: str
    handler: Handler

    @property
    def name(self) -> str:
        return f"{self.handler.__module__}.{self.handler.__qualname__}"


_registrations: list[Registration] = []


def event_handler(pattern: str) -> Callable[[Handler], Handler]:
    """Run the decorated function for each event whose routing key matches ``pattern``.

    ``python manage.py eventhandler`` runs the registered handlers as a process.
    """

    def register(handler: Handler) -> Handler:
        _registrations.append(Registration(pattern, handler))
        return handler

    return register


def registrations() -> list[Registration]:
    return list(_registrations)


def dispatch(key: str, event: dict[str, Any], handlers: list[Registration]) -> int:
    """Call every handler whose pattern matches; one failing handler does not stop the rest."""
    called = 0
    for registration in handlers:
        if matches(registration.pattern, key):
            called += 1
            try:
                registration.handler(event)
            except Exception:  # a handler's bug must not stop the event handler process
                logger.exception("Event handler %s failed for %s", registration.name, key)
    return called


# --- Publishing -----------------------------------------------------------------------------

_BINDINGS_CACHE_SECONDS = 5.0
_bindings_checked: dict[str, tuple[bool, float]] = {}


def _anyone_listening(connection: Any) -> bool:
    """On Redis and other virtual transports an unbound message is kept in a dead-letter list
    forever; publish there only when some queue is bound (checked every few seconds)."""
    transport = connection.transport
    if not getattr(transport, "implements", None) or transport.driver_type == "amqp":
        return True
    cached = _bindings_checked.get(connection.as_uri())
    now = time.monotonic()
    if cached and cached[1] > now:
        return cached[0]
    channel = connection.default_channel
    try:
        listening = bool(channel.get_table(EXCHANGE_NAME))
    except (KeyError, NotImplementedError):
        listening = False
    _bindings_checked[connection.as_uri()] = (listening, now + _BINDINGS_CACHE_SECONDS)
    return listening


def publish_event(app: Celery, key: str, body: Mapping[str, Any]) -> bool:
    """Publish one event; a broker problem is logged, never raised into the task."""
    try:
        with app.producer_or_acquire() as producer:
            if not _anyone_listening(producer.connection):
                return False
            producer.publish(
                dict(body),
                exchange=exchange,
                routing_key=key,
                serializer="json",
                declare=[exchange],
                retry=True,
                retry_policy={"max_retries": 2},
            )
    except (BrokerError, OSError) as error:
        logger.warning("Task event %s not published: %s", key, error)
        return False
    return True
