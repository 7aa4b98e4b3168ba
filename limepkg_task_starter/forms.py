"""Forms of the Task starter pages that are not the admin's own."""

from __future__ import annotations

import json
import types
import typing
from collections import abc
from datetime import UTC
from functools import lru_cache
from html import escape as escape_text
from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.errors import PydanticSchemaGenerationError, PydanticUserError

from lime_task.status import Origin, State
from lime_task.storable import NotStorableError, storable_json, storable_text
from limepkg_task_starter.arguments import ArgumentsError, Parameter, decode_arguments
from limepkg_task_starter.run_search import SearchError, parse_search
from limepkg_task_starter.selectors import RunFilters

ANY = [("", "Any")]


class LongSelect(forms.Select):
    """A select for a thousand options: the same markup as Django's, built in one pass instead
    of one template render per option (25 ms for 1,000 tasks), and escaped with the standard
    library's ``html.escape``, which Django's ``escape`` wraps with a check for lazy text on
    every call (another 40 ms for 1,000 options on this machine)."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        chosen = "" if value is None else str(value)
        options = "".join(
            f'<option value="{escape_text(str(key))}"'
            f"{' selected' if str(key) == chosen else ''}>{escape_text(str(label))}</option>"
            for key, label in self.choices
        )
        final = self.build_attrs(self.attrs, attrs)
        return format_html(
            '<select name="{}"{}>{}</select>',
            name,
            flatatt(final),
            mark_safe(options),  # each key and label escaped above
        )


UNTIL_BEFORE_SINCE = "“To” must be after “From”."
TIME_OUT_OF_RANGE = "Not a time the history can hold: give one between the years 1 and 9999."
# The rows call a revoked run "Cancelled" (the page's word for it); the filter says the same.
STATUS_LABELS = {State.REVOKED: "Cancelled"}


class RunFilterForm(forms.Form):
    """The runs page's filters, read from the query string. A value that does not fit is said
    next to its field and left out; the page still shows the runs."""

    status = forms.ChoiceField(
        required=False,
        choices=ANY
        + [(state.value, STATUS_LABELS.get(state, state.value.title())) for state in State],
    )
    task = forms.ChoiceField(required=False, choices=ANY, widget=LongSelect)
    origin = forms.ChoiceField(
        required=False, choices=ANY + [(origin.value, origin.label) for origin in Origin]
    )
    user = forms.CharField(required=False, max_length=150, label="User")
    since = forms.DateTimeField(
        required=False,
        label="From",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        required=False,
        label="To",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        help_text=mark_safe(  # constant markup
            "Words find text in arguments, results and errors; <code>key=value</code> finds an "
            "argument: <code>customer.id=42</code>, <code>flag=true</code>, "
            '<code>name="Ada Lovelace"</code>.'
        ),
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "text or key=value"}),
    )

    def __init__(self, *args: Any, task_names: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        task_field = self.fields["task"]
        assert isinstance(task_field, forms.ChoiceField)
        task_field.choices = ANY + [(name, name.rsplit(".", 1)[-1]) for name in task_names]
        for name, field in self.fields.items():
            field.widget.attrs.setdefault("id", f"filter-{name}")

    def clean_q(self) -> str:
        search: str = self.cleaned_data["q"].strip()
        try:
            parse_search(search)
        except SearchError as error:
            raise forms.ValidationError(str(error), code="search") from error
        return search

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        for name in ("since", "until"):  # in UTC: a typed offset the database cannot hold
            try:
                cleaned[name] = cleaned[name] and cleaned[name].astimezone(UTC)
            except OverflowError:
                self.add_error(name, TIME_OUT_OF_RANGE)
            except KeyError:  # did not fit the field, said there already
                pass
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until <= since:
            self.add_error("until", UNTIL_BEFORE_SINCE)
        return cleaned

    def filters(self) -> RunFilters:
        """What was valid; a field with an error filters nothing."""
        self.is_valid()
        data = {
            name: value
            for name, value in getattr(self, "cleaned_data", {}).items()
            if name not in self.errors
        }
        return RunFilters(
            status=data.get("status") or "",
            task=data.get("task") or "",
            origin=data.get("origin") or "",
            user=(data.get("user") or "").strip(),
            since=data.get("since"),
            until=data.get("until"),
            search=(data.get("q") or "").strip(),
        )


# --- The start form: one field per parameter of the task ------------------------------------

REQUIRED = "Required."
NOT_JSON_VALUE = "{error} Type it as, for example, {example}."
NOT_EXPECTED = "{value} is not {expected}."
ITEM_NOT_EXPECTED = "Item {position}, {value}, is not {expected}."
AT_KEY_NOT_EXPECTED = "At {key}, {value} is not {expected}."
FOR_EXAMPLE = " Type it as, for example, {example}."
SEPARATED = "Items separated by commas, or a JSON list."

# What pydantic's error types mean, in words that say what to type instead.
EXPECTED = {
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "string_type": "text",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "an object",
    "literal_error": "one of the allowed values",
}
LISTS = (list, tuple, set, frozenset, abc.Sequence, abc.Set, abc.Collection, abc.Iterable)
NUMBERS = (int, float)


class Omitted:
    """An optional field left empty: the argument is not sent, so its default applies."""


OMITTED = Omitted()


def _without_none(annotation: Any) -> Any:
    """``int | None`` and ``Optional[int]`` read as ``int``: an empty field is how to say None."""
    arguments = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(arguments) == 1:
        return arguments[0]
    return annotation


def _item_type(annotation: Any) -> Any | None:
    """The type of a list's items, or None when ``annotation`` is not a list."""
    bare = _without_none(annotation)
    if typing.get_origin(bare) in LISTS:
        return (typing.get_args(bare) or (Any,))[0]
    return Any if bare in LISTS else None


def _example(annotation: Any) -> Any:
    """A value of the type, to show what to type; None where no simple example fits."""
    bare = _without_none(annotation)
    if bare is bool:
        return True
    if bare is int:
        return 42
    if bare is float:
        return 1.5
    if bare is str:
        return "some text"
    if typing.get_origin(bare) is typing.Literal:
        return typing.get_args(bare)[0]
    item = _item_type(bare)
    if item is not None:
        if item is str:
            return ["first", "second"]
        example = _example(item)
        return [1, 2, 3] if example is None or item in NUMBERS else [example]
    if bare is dict or typing.get_origin(bare) in (dict, abc.Mapping):
        value = _example((typing.get_args(bare) or (str, str))[-1])
        return {"key": "value" if value is None else value}
    return None


def _example_text(annotation: Any) -> str:
    """The example as it is typed in the field: a list of numbers or words as ``1, 2, 3``."""
    example = _example(annotation)
    if example is None:
        return ""
    if isinstance(example, list) and _item_type(annotation) in (*NUMBERS, str):
        return ", ".join(str(item) for item in example)
    if isinstance(example, str) and _without_none(annotation) is str:
        return ""  # any text will do: an example would only read as a suggested value
    return json.dumps(example)


def _adapter(annotation: Any) -> TypeAdapter[Any] | None:
    try:
        return _cached_adapter(annotation)
    except TypeError:  # unhashable, as Annotated[int, {"a": "dict"}]: built each time
        return _new_adapter(annotation)


@lru_cache(maxsize=1024)
def _cached_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    return _new_adapter(annotation)


def _new_adapter(annotation: Any) -> TypeAdapter[Any] | None:
    try:
        return TypeAdapter(annotation, config=ConfigDict(allow_inf_nan=False))
    except (PydanticSchemaGenerationError, PydanticUserError):
        return None  # a type pydantic cannot check alone: the start policy checks it


def _shown(value: Any) -> str:
    text = storable_text(value if isinstance(value, str) else json.dumps(value))
    return f"“{text[:40]}…”" if len(text) > 40 else f"“{text}”"


def _explain(detail: Any, example: str) -> str:
    """One of pydantic's errors as what is wrong, where, and what to type instead."""
    expected = EXPECTED.get(detail["type"]) or str(detail["msg"]).lower()
    value, location = _shown(detail["input"]), detail["loc"]
    if not location:
        problem = NOT_EXPECTED.format(value=value, expected=expected)
    elif isinstance(location[0], int):
        problem = ITEM_NOT_EXPECTED.format(position=location[0] + 1, value=value, expected=expected)
    else:
        key = ".".join(str(part) for part in location)
        problem = AT_KEY_NOT_EXPECTED.format(key=key, value=value, expected=expected)
    return problem + (FOR_EXAMPLE.format(example=example) if example else "")


def _separated(text: str, item: Any) -> list[Any]:
    """``1, 2, 3`` as a list: items read as JSON where they can be (so numbers are numbers),
    as text where the list is of text."""
    values: list[Any] = []
    for part in (part.strip() for part in text.split(",")):
        if item is str:
            values.append(part)
            continue
        try:
            values.append(decode_arguments(part))
        except ArgumentsError:
            values.append(part)  # said by the type check, at its position
    return values


class ParameterField(forms.Field):
    """A task parameter typed as text, read as the JSON value the task is sent, and checked
    against its type hint with messages that say what to type."""

    default_error_messages = {"required": REQUIRED}

    def __init__(self, parameter: Parameter, **kwargs: Any) -> None:
        self.parameter = parameter
        self.example = _example_text(parameter.annotation)
        super().__init__(required=parameter.required, **kwargs)

    def to_python(self, value: Any) -> Any:
        text = "" if value is None else str(value)
        if not text.strip():
            return OMITTED
        if self.parameter.kind == "text":
            return text
        if self.parameter.kind == "number":
            return text.strip()  # pydantic reads "7" as 7 for an int, and says why not
        return self._decode(text.strip())

    def _decode(self, text: str) -> Any:
        item = _item_type(self.parameter.annotation)
        try:
            value = decode_arguments(text)
        except ArgumentsError as error:
            if item is not None and not text.startswith("["):
                return _separated(text, item)
            if item is not None:
                example = f"{json.dumps(_example(self.parameter.annotation))} or {self.example}"
            else:
                example = self.example or '"text", 5 or [1, 2]'
            raise forms.ValidationError(
                NOT_JSON_VALUE.format(error=error.messages[0], example=example), code="invalid"
            ) from error
        if item is not None and not isinstance(value, list | dict) and value is not None:
            return _separated(text, item)  # one item: "7" is [7]
        return value

    def validate(self, value: Any) -> None:
        if value is OMITTED and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")

    def clean(self, value: Any) -> Any:
        value = self.to_python(value)
        self.validate(value)
        if value is OMITTED:
            return value
        try:  # what the history cannot keep is refused before its type is looked at
            storable_json(value, where=self.parameter.name)
        except NotStorableError as error:
            raise forms.ValidationError(str(error), code="invalid") from error
        adapter = _adapter(self.parameter.annotation)
        if adapter is None:
            return value
        try:
            checked = adapter.validate_python(value)
        except ValidationError as error:
            raise forms.ValidationError(
                _explain(error.errors()[0], self.example), code="invalid"
            ) from error
        return adapter.dump_python(checked, mode="json")


def _help(parameter: Parameter) -> SafeString:
    if parameter.required:
        text = format_html("<code>{}</code>, required", parameter.type)
    else:
        default = json.dumps(parameter.default, default=str)
        text = format_html("<code>{}</code>, default <code>{}</code>", parameter.type, default)
    if parameter.kind == "json" and _item_type(parameter.annotation) is not None:
        text = format_html("{}. {}", text, SEPARATED)
    return text


def _as_text(parameter: Parameter, value: Any) -> Any:
    """An argument's value as its field shows it (the checkbox takes it as it is)."""
    if parameter.kind == "checkbox":
        return bool(value)
    if value is None:
        return ""
    if parameter.kind in ("number", "text"):
        return value if isinstance(value, str) else json.dumps(value)
    item = _item_type(parameter.annotation)
    if (
        isinstance(value, list)
        and item in NUMBERS
        and all(isinstance(entry, NUMBERS) and not isinstance(entry, bool) for entry in value)
    ):
        return ", ".join(json.dumps(entry) for entry in value)
    return json.dumps(value)


class StartForm(forms.Form):
    """The task's arguments, one field per parameter (``param-<name>``): each is read and
    checked against its type hint here, to say at the field what to type; the start policy
    checks the whole again, as for every other way of starting."""

    prefix = "param"

    def __init__(
        self,
        data: Any = None,
        *,
        parameters: list[Parameter],
        values: dict[str, Any] | None = None,
    ) -> None:
        values = values or {}
        initial = {
            p.name: _as_text(p, values.get(p.name, p.default))
            for p in parameters
            if p.name in values or not p.required
        }
        super().__init__(data, initial=initial, auto_id="%s")
        for parameter in parameters:
            self.fields[parameter.name] = self._field(parameter)

    @staticmethod
    def _field(parameter: Parameter) -> forms.Field:
        attrs = {"data-kind": parameter.kind}
        options: dict[str, Any] = {"label": parameter.name, "help_text": _help(parameter)}
        if parameter.kind == "checkbox":
            return forms.BooleanField(
                required=False, widget=forms.CheckboxInput(attrs=attrs), **options
            )
        example = _example_text(parameter.annotation)
        if example:
            attrs["placeholder"] = f"e.g. {example}"
        widget: forms.Widget
        if parameter.kind == "json":
            item = _item_type(parameter.annotation)
            if item is not None:  # typed as 1, 2, 3 too; the page's script converts it alike
                attrs["data-list"] = "text" if item is str else "json"
            attrs.update({"rows": "2", "cols": "40", "spellcheck": "false", "class": "ts-json"})
            widget = forms.Textarea(attrs=attrs)
        else:
            if parameter.kind == "number":
                attrs["inputmode"] = "decimal"
            widget = forms.TextInput(attrs=attrs)
        return ParameterField(parameter, widget=widget, **options)

    def arguments(self) -> dict[str, Any]:
        """What to start with: every field that was read, by name; an empty optional field is
        left out so its default applies; a field that could not be read is left out too (the
        start is refused for it anyway)."""
        cleaned = getattr(self, "cleaned_data", {})
        return {name: value for name, value in cleaned.items() if value is not OMITTED}

    def refuse(self, error: ArgumentsError) -> list[str]:
        """Say the start policy's refusal at the fields it names; what is left, for above."""
        placed = set()
        for name, text in error.by_argument.items():
            if name in self.fields:
                self.add_error(name, text)
                placed.add(text)
        return [text for text in error.messages if text not in placed]
