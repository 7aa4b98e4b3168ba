"""Which queue a task goes to.

Highest first: the task's entry in ``routing.tasks`` → the sender's ``__queue`` header → the
sender's ``__qos_category`` header → the decorator's ``qos`` → ``task_queue_name``. Every queue
name gets ``LIME_TASK_QUEUE_PREFIX`` and ``LIME_TASK_QUEUE_SUFFIX``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lime_task import headers
from lime_task.config import TasksConfig

logger = logging.getLogger(__name__)


class RouteType(StrEnum):
    TASK_ROUTE = "task_route"
    HEADER_QUEUE = "header_queue"
    HEADER_QOS = "header_qos"
    TASK_QOS = "task_qos"
    DEFAULT_QUEUE = "default_queue"


@dataclass(frozen=True, slots=True)
class Route:
    queue: str
    route_type: RouteType


def queue_name(name: str, environ: Mapping[str, str] = os.environ) -> str:
    prefix = environ.get("LIME_TASK_QUEUE_PREFIX", "")
    suffix = environ.get("LIME_TASK_QUEUE_SUFFIX", "")
    return f"{prefix}{name}{suffix}"


def all_queue_names(config: TasksConfig) -> list[str]:
    """Every configured queue, prefixed and suffixed: default, QoS and task-specific."""
    names = [config.task_queue_name, *config.routing.qos.values(), *config.routing.tasks.values()]
    return [queue_name(name) for name in dict.fromkeys(names)]


def _qos_queue(config: TasksConfig, category: str) -> str | None:
    queue = config.routing.qos.get(category)
    if queue is None:
        logger.warning(
            "Unknown QoS category %r: using the default queue",
            category,
            extra={"qos_category": category},
        )
    return queue


def route_task(
    config: TasksConfig,
    task_name: str,
    *,
    task_qos: str | None = None,
    message_headers: Mapping[str, Any] | None = None,
) -> Route:
    message_headers = message_headers or {}
    if task_name in config.routing.tasks:
        return Route(queue_name(config.routing.tasks[task_name]), RouteType.TASK_ROUTE)
    if message_headers.get(headers.QUEUE):
        return Route(queue_name(str(message_headers[headers.QUEUE])), RouteType.HEADER_QUEUE)
    if message_headers.get(headers.QOS_CATEGORY):
        queue = _qos_queue(config, str(message_headers[headers.QOS_CATEGORY]))
        if queue is not None:
            return Route(queue_name(queue), RouteType.HEADER_QOS)
    if task_qos:
        queue = _qos_queue(config, task_qos)
        if queue is not None:
            return Route(queue_name(queue), RouteType.TASK_QOS)
    return Route(queue_name(config.task_queue_name), RouteType.DEFAULT_QUEUE)
