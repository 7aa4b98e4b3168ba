"""What a run's history can keep: the one definition of "storable JSON" and "storable text".

Python's ``json`` accepts values the databases refuse or cannot give back: PostgreSQL's ``jsonb``
and ``text`` refuse U+0000, ``Infinity`` and ``NaN`` are not JSON at all (SQLite's JSON check
refuses them), a lone surrogate cannot be encoded as UTF-8, an integer of more than 4,300
digits cannot be read back by Python, and nesting deeper than Python's recursion cannot either.
Every boundary (the pages, the API, ``send_task``, a task's result, ``TaskFailure`` messages,
progress) checks with the functions here, so SQLite and PostgreSQL agree on what is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 100
MAX_RESULT_BYTES = 64 * 1024

NUL_CHARACTER = "{where}: contains U+0000, which PostgreSQL text cannot store."
LONE_SURROGATE = "{where}: contains a lone surrogate (U+D800–U+DFFF), which is not valid Unicode."
NOT_FINITE = "{where}: contains NaN or an infinity: use a finite number."
NOT_JSON = "{where}: not JSON-serialisable: {error}"
TOO_MANY_DIGITS = (
    "{where}: contains an integer of more than 4,300 digits, which cannot be read back."
)
TOO_DEEP = "{where}: nested more than {limit} levels deep."
TOO_LARGE = "{where}: {size} bytes as JSON, over the limit of {limit} bytes."

# An escaped U+0000 in JSON text, preceded by an even number of backslashes (so ``"\\u0000"``,
# a backslash followed by the letters, is not taken for one).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


class NotStorableError(ValueError):
    """The value cannot be kept as it is: the message says what and where."""


def storable_json(value: Any, *, where: str = "The value", max_bytes: int | None = None) -> str:
    """``value`` encoded as the JSON the database will keep; raises :class:`NotStorableError`
    naming ``where`` when it cannot be kept. One pass of the C encoder for the usual value."""
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        # ValueError: NaN or an infinity, or an integer beyond Python's digit limit.
        if "Out of range float values" in str(error):
            raise NotStorableError(NOT_FINITE.format(where=where)) from error
        if "integer string conversion" in str(error):
            raise NotStorableError(TOO_MANY_DIGITS.format(where=where)) from error
        if isinstance(error, RecursionError):
            raise NotStorableError(TOO_DEEP.format(where=where, limit=MAX_DEPTH)) from error
        raise NotStorableError(NOT_JSON.format(where=where, error=error)) from error
    try:
        size = len(encoded.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise NotStorableError(LONE_SURROGATE.format(where=where)) from error
    if "\\u0000" in encoded and _ESCAPED_NUL.search(encoded):
        raise NotStorableError(NUL_CHARACTER.format(where=where))
    if max_bytes is not None and size > max_bytes:
        raise NotStorableError(TOO_LARGE.format(where=where, size=size, limit=max_bytes))
    # Every level of nesting opens a bracket: only a value with many of them needs the walk.
    if encoded.count("[") + encoded.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise NotStorableError(TOO_DEEP.format(where=where, limit=MAX_DEPTH))
    return encoded


def _depth(value: Any) -> int:
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list | tuple):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            pending.extend((child, level + 1) for child in item)
    return deepest


def storable_text(text: str) -> str:
    """Free text (an error message, a traceback, a progress message) as the database can keep
    it: what it cannot is written visibly escaped (``\\x00``, ``\\ud800``) rather than lost."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
