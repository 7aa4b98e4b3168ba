"""Task arguments typed as JSON, checked against the task function's signature.

The signature (minus the application parameter) becomes a pydantic model, so type hints decide
what is accepted and the messages name the argument that is wrong.
"""

from __future__ import annotations

import inspect
import json
import math
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from lime_task.decorator import LimeTask
from lime_task.storable import NotStorableError, storable_json

NOT_JSON = "Not valid JSON: {error} (line {line}, column {column})."
NOT_PLAIN_JSON = "Not valid JSON: {error}."
NOT_A_NUMBER = "{value} is not a JSON number: use a finite number."
WRONG_SHAPE = "The arguments must be a JSON object (by name) or an array (by position), not {kind}."
TOO_MANY = "The task takes {expected} argument{s}; {given} were given."
NOT_AN_ARGUMENT = "{name}: not an argument of this task."


class ArgumentsError(ValueError):
    """Why the arguments were refused: every message, and the first one about each argument
    by its name (for a form that shows them at their field)."""

    def __init__(self, messages: list[str], by_argument: dict[str, str] | None = None) -> None:
        super().__init__("\n".join(messages))
        self.messages = messages
        self.by_argument = by_argument or {}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    required: bool
    default: Any = None
    # The type hint itself, for a form that reads and checks each field on its own.
    annotation: Any = field(default=Any, compare=False, repr=False)

    @property
    def kind(self) -> str:
        """The input that fits it in the parameter form: checkbox, number, text, or JSON."""
        return FORM_INPUTS.get(self.type, "json")


FORM_INPUTS = {"bool": "checkbox", "int": "number", "float": "number", "str": "text"}


def _signature_parameters(task: LimeTask) -> list[inspect.Parameter]:
    parameters = list(inspect.signature(task.run).parameters.values())
    return parameters[1:]  # the first is always the application


def _type_hints(task: LimeTask) -> dict[str, Any]:
    try:
        return typing.get_type_hints(task.run)
    except (NameError, TypeError):
        return {}


def _type_name(annotation: Any) -> str:
    if annotation is inspect.Parameter.empty or annotation is Any:
        return "any"
    if typing.get_args(annotation):  # list[int], not the "list" its __name__ gives
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def _annotation(annotation: Any) -> Any:
    return Any if annotation is inspect.Parameter.empty else annotation


def task_parameters(task: LimeTask) -> list[Parameter]:
    hints = _type_hints(task)
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        Parameter(
            name=p.name,
            type=_type_name(hints.get(p.name, p.annotation)),
            required=p.default is inspect.Parameter.empty,
            default=None if p.default is inspect.Parameter.empty else p.default,
            annotation=_annotation(hints.get(p.name, p.annotation)),
        )
        for p in _signature_parameters(task)
        if p.kind in named
    ]


def default_arguments(task: LimeTask) -> dict[str, Any]:
    """What the JSON field starts with: each argument's default, ``null`` where there is none."""
    return {p.name: p.default for p in task_parameters(task)}


@lru_cache(maxsize=4096)
def _model_for(task: LimeTask) -> type[BaseModel]:
    hints = _type_hints(task)
    parameters = _signature_parameters(task)
    takes_any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    fields: dict[str, Any] = {
        p.name: (
            hints.get(p.name, Any),
            ... if p.default is inspect.Parameter.empty else p.default,
        )
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    # Finite numbers only, also after converting text such as "inf" or "1e400".
    config = ConfigDict(extra="allow" if takes_any_keyword else "forbid", allow_inf_nan=False)
    return create_model(f"{task.__name__}Arguments", __config__=config, **fields)


def _by_name(task: LimeTask, values: Any) -> dict[str, Any]:
    if isinstance(values, dict):
        return values
    if isinstance(values, list):
        names = [p.name for p in task_parameters(task)]
        if len(values) > len(names):
            raise ArgumentsError(
                [
                    TOO_MANY.format(
                        expected=len(names), s="" if len(names) == 1 else "s", given=len(values)
                    )
                ]
            )
        return dict(zip(names, values, strict=False))
    kind = "null" if values is None else type(values).__name__
    raise ArgumentsError([WRONG_SHAPE.format(kind=kind)])


def _message(error: Any) -> str:
    name = ".".join(str(part) for part in error["loc"]) or "arguments"
    if error["type"] == "extra_forbidden":
        return NOT_AN_ARGUMENT.format(name=name)
    return f"{name}: {error['msg']}."


def decode_arguments(text: str) -> Any:
    """The JSON a person typed, decoded; raises :class:`ArgumentsError` for anything that is
    not plain JSON (also ``NaN``, ``1e400``, lone surrogates, and absurd numbers or nesting)."""
    try:
        values = json.loads(text or "{}", parse_constant=_refuse_constant, parse_float=_finite)
    except json.JSONDecodeError as error:
        raise ArgumentsError(
            [NOT_JSON.format(error=error.msg, line=error.lineno, column=error.colno)]
        ) from error
    except (ValueError, RecursionError) as error:
        # ValueError: an integer past Python's digit limit, or a refused constant.
        raise ArgumentsError([NOT_PLAIN_JSON.format(error=error)]) from error
    return values


def _refuse_constant(name: str) -> Any:
    raise ValueError(NOT_A_NUMBER.format(value=name).removesuffix("."))


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(NOT_A_NUMBER.format(value=text).removesuffix("."))
    return value


def _refuse_unstorable(given: dict[str, Any]) -> None:
    """Values the run history cannot keep (:mod:`lime_task.storable`), refused by argument."""
    by_argument: dict[str, str] = {}
    for name, value in given.items():
        try:
            storable_json(value, where=name)
        except NotStorableError as error:
            by_argument[name] = str(error)
    if by_argument:
        raise ArgumentsError(list(by_argument.values()), by_argument)
    try:
        storable_json(list(given), where="An argument name")
    except NotStorableError as error:
        raise ArgumentsError([str(error)]) from error


@dataclass(frozen=True)
class TypedArguments:
    """Arguments as a person typed them: JSON text, decoded only once the start is allowed."""

    text: str


def check_arguments(task: LimeTask, values: Any) -> dict[str, Any]:
    """Arguments (an object by name or an array by position, or :class:`TypedArguments`)
    checked against the task's signature and converted; raises :class:`ArgumentsError`."""
    if isinstance(values, TypedArguments):
        values = decode_arguments(values.text)
    given = _by_name(task, values)
    _refuse_unstorable(given)
    try:
        checked = _model_for(task).model_validate(given)
    except ValidationError as error:
        errors = error.errors()
        by_argument: dict[str, str] = {}
        for detail in errors:
            if detail["loc"]:
                by_argument.setdefault(str(detail["loc"][0]), _message(detail))
        raise ArgumentsError([_message(e) for e in errors], by_argument) from error
    converted = checked.model_dump(mode="json")
    return {name: converted[name] for name in given}


def parse_arguments(task: LimeTask, text: str) -> dict[str, Any]:
    """The arguments typed as JSON text, decoded and checked; raises :class:`ArgumentsError`."""
    return check_arguments(task, decode_arguments(text))


def named_arguments(task: LimeTask, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Positional and keyword arguments of a send, by name."""
    names = [p.name for p in task_parameters(task)]
    return {**dict(zip(names, args, strict=False)), **kwargs}
