"""The runs page's search box, read into terms, and the runs it finds.

``key=value`` (``key.sub=value`` for a nested key) finds runs whose arguments hold that value;
any other word, or a quoted phrase, is looked for in the text of the arguments, the result, the
error message and the reason. Every term must hold. A value is read as JSON when it is JSON
(``n=3`` is the number 3, ``flag=true`` the boolean), else as text (``name=alice``); a quoted
value is always the text it quotes (``n="3"``, ``name='Ada Lovelace'``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.backends.signals import connection_created
from django.db.models import BooleanField, Func, JSONField, QuerySet, TextField, Value
from django.db.models.functions import Cast, Coalesce, Concat
from django.dispatch import receiver

from lime_task.storable import NotStorableError, storable_json

MAX_TERMS = 10

UNCLOSED_QUOTE = "A quote is not closed: {fragment}"
NO_KEY = "Name the argument before “=”, as in customer=42."
NO_VALUE = 'Give a value after “{key}=”, as in {key}=42 (or {key}="" for empty text).'
BAD_KEY = "“{key}” is not an argument name: put one dot between nested names (customer.id)."
BAD_JSON = "The value of {key} is not JSON: {error}. Quote it to search for the text."
AFTER_VALUE = "Put a space after the value of {key}, before “{rest}”."
NUL = "The search cannot contain the character U+0000."
TOO_MANY = f"Search with at most {MAX_TERMS} terms."

_SPACE = re.compile(r"\s+")
_BARE = re.compile(r"[^\s=]+")  # a key, or a word of text (can't is one word)
_BARE_VALUE = re.compile(r"\S+")
_DECODER = json.JSONDecoder(parse_constant=lambda name: _refuse(f"{name} is not a number"))


class SearchError(ValueError):
    """The search cannot be read: the message says what to type instead."""


@dataclass(frozen=True)
class ArgumentTerm:
    """``path=value``: the argument at ``path`` (names, outermost first) holds ``value``."""

    path: tuple[str, ...]
    value: Any

    def as_object(self) -> dict[str, Any]:
        """The JSON object that a run's arguments contain when they hold this term."""
        nested: Any = self.value
        for name in reversed(self.path):
            nested = {name: nested}
        return dict(nested)


@dataclass(frozen=True)
class RunSearch:
    arguments: tuple[ArgumentTerm, ...] = ()
    words: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.arguments or self.words)

    def containments(self) -> list[dict[str, Any]]:
        """The argument terms as few JSON objects as they merge into (``customer.id=1
        customer.name=x`` is one), each to be contained in the arguments."""
        merged: list[dict[str, Any]] = []
        for term in self.arguments:
            wanted = term.as_object()
            for index, into in enumerate(merged):
                combined = _merged(into, wanted)
                if combined is not None:
                    merged[index] = combined
                    break
            else:
                merged.append(wanted)
        return merged


def parse_search(text: str) -> RunSearch:
    """The terms of ``text``; raises :class:`SearchError` saying what is wrong."""
    if "\x00" in text:
        raise SearchError(NUL)
    arguments: list[ArgumentTerm] = []
    words: list[str] = []
    position = _skip_space(text, 0)
    while position < len(text):
        if text[position] in "\"'":
            word, position = _quoted(text, position)
            if word:
                words.append(_checked(word, "The quoted text"))
        else:
            bare = _BARE.match(text, position)
            key = bare.group() if bare else ""
            position += len(key)
            if position < len(text) and text[position] == "=":
                value, position = _value(text, position + 1, key)
                arguments.append(ArgumentTerm(_path(key), value))
                if position < len(text) and not text[position].isspace():
                    raise SearchError(AFTER_VALUE.format(key=key, rest=text[position:]))
            else:
                words.append(key)
        position = _skip_space(text, position)
    if len(arguments) + len(words) > MAX_TERMS:
        raise SearchError(TOO_MANY)
    return RunSearch(arguments=tuple(arguments), words=tuple(words))


def _skip_space(text: str, position: int) -> int:
    space = _SPACE.match(text, position)
    return space.end() if space else position


def _path(key: str) -> tuple[str, ...]:
    if not key:
        raise SearchError(NO_KEY)
    names = tuple(key.split("."))
    if not all(names):
        raise SearchError(BAD_KEY.format(key=key))
    return names


def _quoted(text: str, start: int) -> tuple[str, int]:
    """The text between a quote at ``start`` and its closing quote, and where it ends. Double
    quotes read JSON escapes (``\\"``); single quotes take everything up to the next one."""
    if text[start] == "'":
        end = text.find("'", start + 1)
        if end < 0:
            raise SearchError(UNCLOSED_QUOTE.format(fragment=text[start:]))
        return text[start + 1 : end], end + 1
    try:
        value, end = json.JSONDecoder().raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise SearchError(UNCLOSED_QUOTE.format(fragment=text[start:])) from error
    return str(value), end


def _value(text: str, start: int, key: str) -> tuple[Any, int]:
    """The value after ``key=`` and where it ends."""
    _path(key)
    if start >= len(text) or text[start].isspace():
        raise SearchError(NO_VALUE.format(key=key))
    first = text[start]
    if first in "\"'":
        quoted, end = _quoted(text, start)
        return _checked(quoted, f"The value of {key}"), end
    if first in "{[":
        try:
            value, end = _DECODER.raw_decode(text, start)
        except (json.JSONDecodeError, SearchError) as error:
            message = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            raise SearchError(BAD_JSON.format(key=key, error=message)) from error
        return _checked(value, f"The value of {key}"), end
    bare = _BARE_VALUE.match(text, start)
    assert bare is not None  # text[start] is not a space
    try:
        value = _DECODER.decode(bare.group())
    except (json.JSONDecodeError, SearchError):
        value = bare.group()
    if isinstance(value, float) and not math.isfinite(value):
        value = bare.group()  # 1e999: no number the database keeps
    return _checked(value, f"The value of {key}"), bare.end()


def _checked(value: Any, where: str) -> Any:
    """``value`` if the database can hold it (PostgreSQL refuses U+0000, for one)."""
    try:
        storable_json(value, where=where)
    except NotStorableError as error:
        raise SearchError(str(error)) from error
    return value


def _refuse(message: str) -> Any:
    raise SearchError(message)


def _merged(held: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any] | None:
    """One object contained wherever both are, or None when a key would hold two things."""
    result = dict(held)
    for name, value in wanted.items():
        if name not in result:
            result[name] = value
        elif isinstance(result[name], dict) and isinstance(value, dict):
            inner = _merged(result[name], value)
            if inner is None:
                return None
            result[name] = inner
        elif result[name] != value or type(result[name]) is not type(value):
            return None
    return result


# --- The search as a query --------------------------------------------------------------------

# SQLite has no JSON containment: a function of ours stands in for PostgreSQL's ``@>``.
SQLITE_CONTAINS = "task_starter_json_contains"
# What the runs page shows as a run's arguments: by name, else the keyword arguments it was sent.
SEARCHED_ARGUMENTS = Coalesce("arguments", "kwargs", output_field=JSONField())


def runs_searched(runs: QuerySet[Any], search: RunSearch) -> QuerySet[Any]:
    """``runs`` narrowed to those that ``search`` finds.

    The arguments are the named ones, or the keyword arguments of a run sent from code without
    names (what the runs page shows); on PostgreSQL ``arguments @> {...}`` is served by the GIN
    index on that same expression (migration 0011). Words are looked for, case-blind, in the
    arguments, the result, the error message and the reason, all of which must be read: the
    caller bounds the runs (a time window).
    """
    for wanted in search.containments():
        runs = _containing(runs, wanted)
    if search.words:
        runs = runs.alias(
            searched_text=Concat(
                Cast(SEARCHED_ARGUMENTS, TextField()),
                Value("\n"),
                Cast("result", TextField()),
                Value("\n"),
                "error_message",
                Value("\n"),
                "reason",
                output_field=TextField(),
            )
        )
        for word in search.words:
            runs = runs.filter(searched_text__icontains=word)
    return runs


def _containing(runs: QuerySet[Any], wanted: dict[str, Any]) -> QuerySet[Any]:
    narrowed: QuerySet[Any]
    if connection.features.supports_json_field_contains:
        narrowed = runs.alias(searched_arguments=SEARCHED_ARGUMENTS).filter(
            searched_arguments__contains=wanted
        )
        return narrowed
    contained = Func(
        SEARCHED_ARGUMENTS,
        Value(json.dumps(wanted)),
        function=SQLITE_CONTAINS,
        output_field=BooleanField(),
    )
    narrowed = runs.alias(searched_arguments=contained).filter(searched_arguments=True)
    return narrowed


def json_contains(held: Any, wanted: Any) -> bool:
    """PostgreSQL's jsonb containment (``held @> wanted``) below the top level: objects hold
    at least the wanted keys with contained values, arrays hold each wanted item somewhere,
    and other values are equal (``true`` is not 1, 3 is 3.0)."""
    if isinstance(wanted, dict):
        return isinstance(held, dict) and all(
            name in held and json_contains(held[name], value) for name, value in wanted.items()
        )
    if isinstance(wanted, list):
        return isinstance(held, list) and all(
            any(json_contains(item, value) for item in held) for value in wanted
        )
    if isinstance(held, dict | list) or isinstance(held, bool) != isinstance(wanted, bool):
        return False
    if isinstance(held, str) != isinstance(wanted, str):
        return False
    return bool(held == wanted)


def _sqlite_contains(held: str | None, wanted: str) -> bool:
    return held is not None and json_contains(json.loads(held), json.loads(wanted))


@receiver(connection_created)
def _add_sqlite_contains(*, connection: Any, **_: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            SQLITE_CONTAINS, 2, _sqlite_contains, deterministic=True
        )
