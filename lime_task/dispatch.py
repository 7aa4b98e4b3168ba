"""Sending tasks: ``send_task`` and the steps it shares with the Task starter."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kombu.exceptions import OperationalError as BrokerError

from lime_task import headers
from lime_task.application import LimeApplication, application_headers, as_application
from lime_task.backend import get_backend
from lime_task.config import tasks_config
from lime_task.decorator import LimeTask
from lime_task.exceptions import InvalidArgumentsError, TaskNotSentError
from lime_task.registry import get_task
from lime_task.routing import Route, route_task
from lime_task.status import Origin, TaskStatus
from lime_task.storable import NotStorableError, storable_json

logger = logging.getLogger(__name__)

MAX_ARGUMENTS_BYTES = 256 * 1024
ARGUMENTS_DO_NOT_FIT = "The arguments do not fit {task}{signature}: {error}"


@dataclass(frozen=True)
class Dispatch:
    """Everything needed to send one task, checked: an existing task, JSON arguments, a route."""

    task: LimeTask
    app: LimeApplication
    args: list[Any]
    kwargs: dict[str, Any]
    route: Route
    route_headers: dict[str, str] = field(default_factory=dict)

    @property
    def task_name(self) -> str:
        return str(self.task.name)


@lru_cache(maxsize=4096)
def _signature(task: LimeTask) -> inspect.Signature:
    return inspect.signature(task.run)


def check_signature(task: LimeTask, args: list[Any], kwargs: Mapping[str, Any]) -> None:
    """The arguments must bind to the task function after its application parameter."""
    signature = _signature(task)
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError as error:
        raise InvalidArgumentsError(
            ARGUMENTS_DO_NOT_FIT.format(task=task.name, signature=signature, error=error)
        ) from error


def check_arguments(args: list[Any], kwargs: Mapping[str, Any]) -> None:
    """The arguments must be JSON the run history can keep (:mod:`lime_task.storable`); a
    refusal names the argument that cannot be kept."""
    try:
        storable_json([args, kwargs], where="The arguments", max_bytes=MAX_ARGUMENTS_BYTES)
    except NotStorableError as error:
        named = [(f"Argument {i + 1}", value) for i, value in enumerate(args)]
        named += [(f"Argument {name!r}", value) for name, value in kwargs.items()]
        for where, value in named:
            try:
                storable_json(value, where=where)
            except NotStorableError as refusal:
                raise InvalidArgumentsError(str(refusal)) from error
        raise InvalidArgumentsError(str(error)) from error


def prepare(
    task_name: str,
    app: LimeApplication | str,
    args: list[Any],
    kwargs: dict[str, Any],
    route_headers: Mapping[str, str] | None = None,
) -> Dispatch:
    found = get_task(task_name)
    check_signature(found, args, kwargs)
    check_arguments(args, kwargs)
    route_headers = {k: str(v) for k, v in (route_headers or {}).items() if v}
    route = route_task(tasks_config(), task_name, task_qos=found.qos, message_headers=route_headers)
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "Task %s routed to %s (%s)",
            task_name,
            route.queue,
            route.route_type,
            extra={
                "task_route_task": task_name,
                "task_route_type": str(route.route_type),
                "task_queue": route.queue,
            },
        )
    return Dispatch(found, as_application(app), args, kwargs, route, dict(route_headers))


def publish(dispatch: Dispatch, task_id: str) -> None:
    """Put the message on the broker; a broker that cannot take it raises TaskNotSentError."""
    try:
        dispatch.task.apply_async(
            tuple(dispatch.args),
            dispatch.kwargs,
            task_id=task_id,
            queue=dispatch.route.queue,
            headers={
                **application_headers(dispatch.app),
                **dispatch.route_headers,
                headers.QUEUE_NAME: dispatch.route.queue,
                headers.SENT_AT: str(time.time()),
            },
        )
    except (BrokerError, OSError) as error:
        raise TaskNotSentError(task_id, f"the broker is unavailable ({error})") from error


def send_task(task_name: str, app: LimeApplication | str, *args: Any, **kwargs: Any) -> TaskStatus:
    """Start ``task_name`` for ``app`` with the given arguments; returns at once, PENDING.

    The sender may choose the queue with the keyword ``__queue`` or the QoS category with
    ``__qos_category`` (``send_task(name, app, 1, **{"__qos_category": "asap"})``); these are
    sent as message headers, not as task arguments.
    """
    route_headers: dict[str, str] = {
        name: str(kwargs.pop(name)) for name in headers.ROUTING_HEADERS if name in kwargs
    }
    dispatch = prepare(task_name, app, list(args), kwargs, route_headers)
    return get_backend().send(dispatch, origin=Origin.CODE)
