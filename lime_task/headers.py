"""Names of the message headers the task API sets and reads."""

from __future__ import annotations

from typing import Final

APPLICATION: Final = "lime_application"
USER: Final = "lime_user"
LANGUAGE: Final = "lime_language"
QUEUE_NAME: Final = "lime_queue"  # the queue the router chose, for logs and the history
SENT_AT: Final = "lime_sent_at"  # epoch seconds, for latency

# Routing overrides a sender may set (see lime_task.routing).
QUEUE: Final = "__queue"
QOS_CATEGORY: Final = "__qos_category"
ROUTING_HEADERS: Final = (QUEUE, QOS_CATEGORY)
