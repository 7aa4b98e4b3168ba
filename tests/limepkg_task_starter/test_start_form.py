"""The start form: each parameter read from what a person types, and what to type instead when
it does not fit (the start policy checks the whole again: test_pages, test_permissions)."""

from __future__ import annotations

from typing import Annotated, Any

import pytest

from lime_task import task
from lime_task.registry import get_task
from limepkg_task_starter.arguments import task_parameters
from limepkg_task_starter.forms import (
    ITEM_NOT_EXPECTED,
    NOT_EXPECTED,
    REQUIRED,
    StartForm,
)

REMINDERS = "solution_demo.tasks.my_tasks.send_reminders"  # customer_ids: list[int], ...
DUMMY = "solution_demo.tasks.my_tasks.dummy_task"  # number: int = 5, numberx: int = 10
SLOW = "solution_demo.tasks.my_tasks.slow_report"  # seconds_per_step: float = 1.0


@task
def tagged(app, tags: list[str], limit: int | None = None, extra: dict[str, int] | None = None):
    return tags


TAGGED = f"{__name__}.tagged"


class Opaque:
    """A type pydantic has no schema for."""


@task
def unusual(app, count: Annotated[int, {"unhashable": "metadata"}], thing: Opaque | None = None):
    return count


UNUSUAL = f"{__name__}.unusual"


def read(task_name: str, **typed: str) -> StartForm:
    form = StartForm(
        {f"param-{name}": text for name, text in typed.items()},
        parameters=task_parameters(get_task(task_name)),
    )
    form.is_valid()
    return form


def error(form: StartForm, name: str) -> str:
    return " ".join(form.errors.get(name, []))


def test_the_form_shows_the_full_type_hint() -> None:
    types = {p.name: p.type for p in task_parameters(get_task(REMINDERS))}
    assert types == {"customer_ids": "list[int]", "dry_run": "bool", "note": "str"}
    assert {p.name: p.type for p in task_parameters(get_task(TAGGED))}["limit"] == "int | None"


def test_placeholders_show_an_example_of_each_type() -> None:
    form = StartForm(parameters=task_parameters(get_task(TAGGED)))
    placeholders = {
        name: field.widget.attrs.get("placeholder") for name, field in form.fields.items()
    }
    assert placeholders == {
        "tags": "e.g. first, second",
        "limit": "e.g. 42",
        "extra": 'e.g. {"key": 42}',
    }


def test_an_empty_required_field_says_required_and_an_empty_optional_one_is_left_out() -> None:
    form = read(REMINDERS, customer_ids="  ", note="")
    assert error(form, "customer_ids") == REQUIRED
    assert form.arguments() == {"dry_run": False}  # note: its default applies


@pytest.mark.parametrize(
    ("typed", "read_as"),
    [("1, 2, 3", [1, 2, 3]), ("[1, 2, 3]", [1, 2, 3]), ("7", [7]), (" 4 ,5 ", [4, 5])],
)
def test_a_list_of_numbers_is_typed_with_commas_or_as_json(typed: str, read_as: Any) -> None:
    form = read(REMINDERS, customer_ids=typed)
    assert form.is_valid(), form.errors
    assert form.arguments()["customer_ids"] == read_as


def test_a_list_of_text_is_typed_with_commas_too() -> None:
    form = read(TAGGED, tags="red, green blue")
    assert form.arguments() == {"tags": ["red", "green blue"]}


def test_a_wrong_item_is_named_by_its_position_with_the_form_to_type() -> None:
    for typed in ('[1, "two", 3]', "1, two, 3"):
        form = read(REMINDERS, customer_ids=typed)
        assert error(form, "customer_ids") == (
            ITEM_NOT_EXPECTED.format(position=2, value="“two”", expected="a whole number")
            + " Type it as, for example, 1, 2, 3."
        )


def test_broken_json_says_where_and_shows_both_forms_of_a_list() -> None:
    message = error(read(REMINDERS, customer_ids="[3,"), "customer_ids")
    assert message.startswith("Not valid JSON: Expecting value (line 1, column 4).")
    assert message.endswith("Type it as, for example, [1, 2, 3] or 1, 2, 3.")


@pytest.mark.parametrize(
    ("task_name", "name", "typed", "expected", "example"),
    [
        (DUMMY, "number", "many", "a whole number", "42"),
        (DUMMY, "number", "7.5", "a whole number", "42"),
        (SLOW, "seconds_per_step", "1,5", "a number", "1.5"),
        (SLOW, "seconds_per_step", "inf", "a finite number", "1.5"),
        (REMINDERS, "customer_ids", "null", "a list", "1, 2, 3"),
    ],
)
def test_a_value_of_the_wrong_type_says_what_to_type(
    task_name: str, name: str, typed: str, expected: str, example: str
) -> None:
    assert error(read(task_name, **{name: typed}), name) == (
        NOT_EXPECTED.format(value=f"“{typed}”", expected=expected)
        + f" Type it as, for example, {example}."
    )


def test_numbers_are_converted_and_text_is_kept_as_typed() -> None:
    assert read(DUMMY, number="7", numberx=" 8 ").arguments() == {"number": 7, "numberx": 8}
    form = read("solution_demo.tasks.my_tasks.example_task", text="  spaced  ")
    assert form.arguments() == {"text": "  spaced  "}


def test_an_optional_value_can_be_null_and_a_mapping_is_json() -> None:
    form = read(TAGGED, tags="a", limit="", extra='{"x": "1"}')
    assert form.arguments() == {"tags": ["a"], "extra": {"x": 1}}
    assert read(TAGGED, tags="a", extra="null").arguments() == {"tags": ["a"], "extra": None}
    assert error(read(TAGGED, tags="a", extra='{"x": "y"}'), "extra").startswith(
        "At x, “y” is not a whole number."
    )


def test_the_last_values_are_shown_as_they_would_be_typed() -> None:
    form = StartForm(
        parameters=task_parameters(get_task(REMINDERS)),
        values={"customer_ids": [3, 1], "dry_run": False, "note": "Q3"},
    )
    assert (form["customer_ids"].value(), form["dry_run"].value(), form["note"].value()) == (
        "3, 1",
        False,
        "Q3",
    )
    tags = StartForm(parameters=task_parameters(get_task(TAGGED)), values={"tags": ["a, b"]})
    assert tags["tags"].value() == '["a, b"]'  # a comma inside an item: JSON, to keep it


def test_hints_pydantic_cannot_cache_or_check_alone_are_still_read() -> None:
    form = read(UNUSUAL, count="3", thing='{"a": 1}')
    # The start policy checks what the form cannot (and refuses an Opaque it cannot build).
    assert form.arguments() == {"count": 3, "thing": {"a": 1}}
    assert error(read(UNUSUAL, count="x"), "count").startswith("“x” is not a whole number.")
