from __future__ import annotations

import pytest

from lime_task import task
from limepkg_task_starter.arguments import (
    ArgumentsError,
    default_arguments,
    parse_arguments,
    task_parameters,
)
from solution_demo.tasks.my_tasks import dummy_task, example_task


@task
def typed(
    app, count: int, ratio: float = 0.5, tags: list[str] | None = None, *, loud: bool = False
):
    return count


@task
def anything(app, first, **options):
    return first


def errors(task_, text: str) -> list[str]:
    with pytest.raises(ArgumentsError) as caught:
        parse_arguments(task_, text)
    return caught.value.messages


def test_parameters_come_from_the_signature_without_the_application() -> None:
    assert [(p.name, p.type, p.required, p.default) for p in task_parameters(typed)] == [
        ("count", "int", True, None),
        ("ratio", "float", False, 0.5),
        ("tags", "list[str] | None", False, None),
        ("loud", "bool", False, False),
    ]


def test_defaults_prefill_the_field() -> None:
    assert default_arguments(dummy_task) == {"number": 5, "numberx": 10}


def test_object_by_name_keeps_only_what_was_given() -> None:
    assert parse_arguments(dummy_task, '{"numberx": 3}') == {"numberx": 3}


def test_array_by_position_is_bound_to_names() -> None:
    assert parse_arguments(dummy_task, "[1, 2]") == {"number": 1, "numberx": 2}


def test_values_are_converted_as_the_hints_say() -> None:
    assert parse_arguments(typed, '{"count": "7", "ratio": 1}') == {"count": 7, "ratio": 1.0}


def test_a_wrong_type_names_the_argument() -> None:
    assert errors(dummy_task, '{"number": "many"}') == [
        "number: Input should be a valid integer, unable to parse string as an integer."
    ]


def test_missing_required_and_unknown_arguments_are_each_named() -> None:
    assert errors(typed, '{"cuont": 1}') == [
        "count: Field required.",
        "cuont: not an argument of this task.",
    ]


def test_too_many_positions() -> None:
    assert errors(example_task, '["a", "b"]') == ["The task takes 1 argument; 2 were given."]


def test_malformed_json_says_where() -> None:
    assert errors(dummy_task, '{"number": 5,,}') == [
        "Not valid JSON: Expecting property name enclosed in double quotes (line 1, column 14)."
    ]


@pytest.mark.parametrize("text", ["5", '"x"', "null"])
def test_arguments_must_be_an_object_or_array(text: str) -> None:
    [message] = errors(dummy_task, text)
    assert message.startswith("The arguments must be a JSON object (by name) or an array")


def test_a_task_taking_any_keyword_accepts_extra_names() -> None:
    assert parse_arguments(anything, '{"first": 1, "colour": "red"}') == {
        "first": 1,
        "colour": "red",
    }
