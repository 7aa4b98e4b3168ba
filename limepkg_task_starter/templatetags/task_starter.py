from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.html import format_html

from lime_task.status import State

register = template.Library()

SHORT_RESULT_CHARS = 80


@register.filter
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 0.001:
        return "< 1 ms"  # not "0 ms": it took some time
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
def run_duration(run: Any) -> str:
    """How long a run took or, while it runs, how long it has been running so far."""
    if run.status == State.STARTED and run.started_at and not run.finished_at:
        return f"{duration((timezone.now() - run.started_at).total_seconds())} so far"
    return duration(run.duration_seconds)


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


@register.filter
def short_task(name: str) -> str:
    """A task's last name: ``solution.tasks.my_task`` → ``my_task``."""
    return name.rsplit(".", 1)[-1]


@register.filter
def run_arguments(run: Any) -> Any:
    """The arguments a run was started with: by name as given, else as sent."""
    if run.arguments is not None:
        return run.arguments
    return run.kwargs or run.args


@register.simple_tag
def moment(value: datetime | None) -> str:
    """A time, in UTC and labelled so; the page's script shows it in the viewer's own time
    zone with how long ago it was."""
    if value is None:
        return "—"
    utc = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}" class="ts-time">{} UTC</time>',
        utc.isoformat(),
        utc.strftime("%Y-%m-%d %H:%M:%S"),
    )


@register.filter
def rate(outcomes: Any) -> str:
    """Success rate as a percentage, or a dash when nothing succeeded or failed."""
    value = outcomes.success_rate
    return "—" if value is None else f"{value * 100:.0f} %"


@register.filter
def quantile(outcomes: Any, fraction: float) -> str:
    return duration(outcomes.percentile(float(fraction)))


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    return mapping.get(key) if mapping else None
