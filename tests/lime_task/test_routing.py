from __future__ import annotations

import pytest

from lime_task.config import RoutingConfig, TasksConfig
from lime_task.routing import RouteType, route_task

CONFIG = TasksConfig(routing=RoutingConfig(tasks={"pkg.tasks.special": "lime_task_queue_special"}))


@pytest.mark.parametrize(
    ("task_name", "task_qos", "headers", "queue", "route_type"),
    [
        (
            "pkg.tasks.special",
            "asap",
            {"__queue": "q"},
            "lime_task_queue_special",
            RouteType.TASK_ROUTE,
        ),
        (
            "pkg.tasks.other",
            "asap",
            {"__queue": "q", "__qos_category": "background"},
            "q",
            RouteType.HEADER_QUEUE,
        ),
        (
            "pkg.tasks.other",
            "asap",
            {"__qos_category": "background"},
            "lime_task_queue_background",
            RouteType.HEADER_QOS,
        ),
        ("pkg.tasks.other", "asap", {}, "lime_task_queue_asap", RouteType.TASK_QOS),
        ("pkg.tasks.other", None, {}, "lime_default_task_queue", RouteType.DEFAULT_QUEUE),
        (
            "pkg.tasks.other",
            "no-such-category",
            {},
            "lime_default_task_queue",
            RouteType.DEFAULT_QUEUE,
        ),
    ],
)
def test_route_order(task_name, task_qos, headers, queue, route_type) -> None:
    route = route_task(CONFIG, task_name, task_qos=task_qos, message_headers=headers)
    assert (route.queue, route.route_type) == (queue, route_type)


def test_prefix_and_suffix_apply_to_every_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIME_TASK_QUEUE_PREFIX", "prod_")
    monkeypatch.setenv("LIME_TASK_QUEUE_SUFFIX", "_eu")
    assert route_task(CONFIG, "x").queue == "prod_lime_default_task_queue_eu"
    assert route_task(CONFIG, "x", task_qos="asap").queue == "prod_lime_task_queue_asap_eu"
    assert route_task(CONFIG, "pkg.tasks.special").queue == "prod_lime_task_queue_special_eu"
