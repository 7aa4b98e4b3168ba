"""The runs page's filter in words, as its fields read: for the confirmation of a bulk action,
its progress page and its audit entry, whichever way (page or API) it was asked for."""

from __future__ import annotations

from limepkg_task_starter.forms import RunFilterForm


def describe_filter(form: RunFilterForm) -> str:
    """The filter in words, as the fields read ("Status: Failure · Task: dummy_task"); a value
    that did not fit its field filters nothing and is left out, as on the runs page."""
    form.is_valid()
    parts = []
    for name, field in form.fields.items():
        value = getattr(form, "cleaned_data", {}).get(name)
        if name in form.errors or value in (None, ""):
            continue
        choices = dict(getattr(field, "choices", ()))
        shown = choices.get(value, value)
        if hasattr(value, "isoformat"):
            shown = value.isoformat(sep=" ", timespec="minutes")
        parts.append(f"{field.label or name.title()}: {shown}")
    return " · ".join(parts)
