"""The argument parser and the task page's JSON field, fed arbitrary JSON-ish text by Hypothesis:
every input is either accepted or refused with a message; never a 500, never a run recorded for
refused input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lime_task.registry import get_task
from limepkg_task_starter.arguments import ArgumentsError, parse_arguments
from limepkg_task_starter.models import Application, TaskRun
from tests.limepkg_task_starter.conftest import make_user

SLOW = "solution_demo.tasks.my_tasks.slow_report"  # steps: int = 20, seconds_per_step: float

# JSON values, then text made from them with the edges a person (or an attacker) can type.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["steps", "seconds_per_step", "x", ""]) | st.text(),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)
edges = st.sampled_from(
    [
        "NaN",
        "-Infinity",
        "1e400",
        "9" * 5000,
        "[" * 3000 + "]" * 3000,
        '"\\ud800"',
        '"\\udfff x"',
        "\x00",
        "{",
        "",
        "null",
        '{"steps": 1e308}',
        '{"steps": 1.5}',
        '{"seconds_per_step": "1"}',
    ]
)


@st.composite
def json_ish_text(draw: Any) -> str:
    text = json.dumps(draw(json_values))
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return text
    if choice == 1:  # an edge in place of one value, or on its own
        edge = draw(edges)
        return text.replace("null", edge, 1) if "null" in text else edge
    if choice == 2:  # cut short, as a paste gone wrong
        return text[: draw(st.integers(0, max(len(text) - 1, 0)))]
    return draw(st.text(max_size=200))  # anything at all


@given(text=json_ish_text())
@settings(max_examples=400, deadline=None)
def test_the_parser_accepts_or_refuses_with_a_message(text: str) -> None:
    try:
        arguments = parse_arguments(get_task(SLOW), text)
    except ArgumentsError as error:
        assert error.messages and all(isinstance(m, str) and m for m in error.messages)
        return
    # Accepted: names of the task only, and values the database can keep as JSON.
    assert set(arguments) <= {"steps", "seconds_per_step"}
    json.dumps(arguments, allow_nan=False, ensure_ascii=False).encode("utf-8")


@pytest.fixture
def starter(pages_application: Application) -> Client:
    pages_application.config["limepkg_task_starter"]["tasks"].append(SLOW)
    pages_application.save()
    client = Client()
    client.force_login(
        make_user("fuzzer", perms=("view", "start"), applications=(pages_application,))
    )
    return client


def test_the_json_field_never_fails_and_never_records_refused_input(starter: Client) -> None:
    page = f"/admin/task-starter/demo/tasks/{SLOW}/"

    @given(text=json_ish_text())
    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def holds(text: str) -> None:
        runs_before = TaskRun.objects.count()
        response = starter.post(page, {"arguments": text, "run_as": "self"})
        assert response.status_code in (302, 400), response.content[:300]
        if response.status_code == 400:
            assert TaskRun.objects.count() == runs_before
            assert "errorlist" in response.content.decode()
        else:
            assert TaskRun.objects.count() == runs_before + 1

    holds()
