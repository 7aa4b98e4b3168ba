"""Operations: the routes listing, structured logs and their truncation, event patterns."""

from __future__ import annotations

import json
import logging
from io import StringIO

import pytest
from django.core.management import call_command
from pythonjsonlogger.json import JsonFormatter

from lime_task import events, send_task
from lime_task.config import RoutingConfig, TasksConfig
from lime_task.logs import TRUNCATED, TruncateMessages


def test_tasks_routes_lists_routes_and_every_task(settings, monkeypatch) -> None:
    monkeypatch.setenv("LIME_TASK_QUEUE_PREFIX", "prod_")
    settings.LIME_TASKS = TasksConfig(
        routing=RoutingConfig(
            tasks={"solution_demo.tasks.my_tasks.dummy_task": "lime_task_queue_special"}
        )
    )
    out = StringIO()
    call_command("tasks", "routes", stdout=out)
    lines = [" ".join(line.split()) for line in out.getvalue().splitlines()]

    assert "asap -> prod_lime_task_queue_asap" in lines
    assert "solution_demo.tasks.my_tasks.dummy_task -> prod_lime_task_queue_special" in lines
    assert (
        "solution_demo.tasks.my_tasks.dummy_task task_route prod_lime_task_queue_special" in lines
    )
    assert (
        "solution_demo.tasks.my_tasks.slow_report task_qos prod_lime_task_queue_background" in lines
    )
    assert (
        "solution_demo.tasks.my_tasks.example_task default_queue prod_lime_default_task_queue"
        in lines
    )


def json_records(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict]:
    formatter = JsonFormatter("%(levelname)s %(name)s %(message)s")
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


def test_routing_is_logged_with_structured_fields(
    dispatched_tasks, lime_app, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lime_task.dispatch")
    send_task("solution_demo.tasks.my_tasks.dummy_task", lime_app, **{"__qos_category": "asap"})
    [record] = json_records(caplog, "lime_task.dispatch")
    assert record["task_route_task"] == "solution_demo.tasks.my_tasks.dummy_task"
    assert (record["task_route_type"], record["task_queue"]) == (
        "header_qos",
        "lime_task_queue_asap",
    )


def test_log_messages_are_truncated_to_the_configured_size() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", ("é" * 100,), None)
    TruncateMessages(max_size=11).filter(record)
    assert record.getMessage() == "é" * 5 + TRUNCATED


def test_zero_means_no_limit() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a" * 5000, None, None)
    TruncateMessages(max_size=0).filter(record)
    assert record.getMessage() == "a" * 5000


@pytest.mark.parametrize(
    ("pattern", "key", "matched"),
    [
        ("core.task.*.failure.v1", "core.task.pkg.tasks.mod.fn.failure.v1", True),
        ("core.task.*.failure.v1", "core.task.pkg.tasks.mod.fn.success.v1", False),
        ("core.task.*.failure.v1", "core.task.failure.v1", False),
        ("core.task.pkg.tasks.mod.fn.*.v1", "core.task.pkg.tasks.mod.fn.success.v1", True),
        ("core.task.#", "core.task.pkg.fn.success.v1", True),
        ("core.#.v1", "core.task.x.failure.v1", True),
        ("core.task.#.v2", "core.task.x.failure.v1", False),
    ],
)
def test_event_patterns(pattern: str, key: str, matched: bool) -> None:
    assert events.matches(pattern, key) is matched


def test_one_failing_handler_does_not_stop_the_others() -> None:
    seen = []

    def broken(event: dict) -> None:
        raise RuntimeError("bug")

    handlers = [
        events.Registration("core.task.*.failure.v1", broken),
        events.Registration("core.task.#", seen.append),
    ]
    assert events.dispatch("core.task.a.b.failure.v1", {"task_id": "1"}, handlers) == 2
    assert seen == [{"task_id": "1"}]


def test_routing_keys() -> None:
    assert events.routing_key("pkg.mod.fn", "success") == "core.task.pkg.mod.fn.success.v1"
