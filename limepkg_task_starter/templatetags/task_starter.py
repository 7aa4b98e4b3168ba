from __future__ import annotations

import json
from typing import Any

from django import template

register = template.Library()

SHORT_RESULT_CHARS = 80


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


@register.filter
def as_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=False)


@register.filter
def short_result(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= SHORT_RESULT_CHARS else text[: SHORT_RESULT_CHARS - 1] + "…"


@register.filter
def percent(done: int | None, total: int | None) -> int:
    if not total or done is None:
        return 0
    return max(0, min(100, round(100 * done / total)))
