from __future__ import annotations

import importlib
import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from kombu import Queue, binding
from kombu.mixins import ConsumerMixin

from lime_task import events
from taskstarter.celery import app as celery_app

logger = logging.getLogger(__name__)
DEFAULT_QUEUE = "lime_task_event_handlers"


class EventConsumer(ConsumerMixin):
    def __init__(self, connection: Any, queue: Queue, handlers: list[events.Registration]):
        self.connection = connection
        self.queue = queue
        self.handlers = handlers

    def get_consumers(self, consumer_class: Any, channel: Any) -> list[Any]:
        return [
            consumer_class(
                queues=[self.queue], callbacks=[self.on_message], accept=["json"], prefetch_count=10
            )
        ]

    def on_message(self, body: Any, message: Any) -> None:
        key = message.delivery_info.get("routing_key", "")
        events.dispatch(key, body if isinstance(body, dict) else {}, self.handlers)
        message.ack()


class Command(BaseCommand):
    help = (
        "Run the registered task event handlers (lime_task.events.event_handler) until stopped. "
        "Handler modules are imported from --module and from the solution packages."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue",
            default=DEFAULT_QUEUE,
            help="The durable queue the handlers share (run several processes "
            "on one queue to share the load).",
        )
        parser.add_argument(
            "--module",
            action="append",
            default=[],
            help="Import this module for its handlers (repeatable).",
        )

    def handle(self, *args: Any, queue: str, module: list[str], **options: Any) -> None:
        for name in ["limepkg_task_starter.event_handlers", *module]:
            importlib.import_module(name)
        handlers = events.registrations()
        if not handlers:
            raise CommandError("No event handlers are registered.")
        patterns = sorted({h.pattern for h in handlers})
        bindings = [events.broker_binding(p) for p in patterns]
        shared = Queue(
            queue,
            exchange=events.exchange,
            durable=True,
            bindings=[binding(events.exchange, routing_key=b) for b in bindings],
        )
        for registration in handlers:
            self.stdout.write(f"{registration.pattern} -> {registration.name}")
        with celery_app.connection_for_read() as connection:
            shared(connection.default_channel).declare()
            self.stdout.write(f"Listening on {queue}", ending="\n")
            self.stdout.flush()
            EventConsumer(connection, shared, handlers).run()
