"""The runs page's search: ``key=value`` for arguments, words for text, read and queried."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from lime_task.status import Origin
from limepkg_task_starter import run_search, selectors
from limepkg_task_starter.models import Application, TaskRun
from limepkg_task_starter.run_search import (
    AFTER_VALUE,
    BAD_KEY,
    MAX_TERMS,
    NO_KEY,
    NO_VALUE,
    NUL,
    TOO_MANY,
    UNCLOSED_QUOTE,
    SearchError,
    json_contains,
    parse_search,
)
from limepkg_task_starter.selectors import RunFilters, runs_filtered, text_search_start
from tests.limepkg_task_starter.conftest import DUMMY

NOW = timezone.now()
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL's own containment and index"
)

# --- Reading the search -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "containments", "words"),
    [
        ("n=3", [{"n": 3}], ()),
        ("flag=true", [{"flag": True}], ()),
        ("missing=null", [{"missing": None}], ()),
        ("ratio=0.5", [{"ratio": 0.5}], ()),
        ("name=alice", [{"name": "alice"}], ()),
        ('n="3"', [{"n": "3"}], ()),  # quoted: the text, not the number
        ("code=007", [{"code": "007"}], ()),  # not JSON: text
        ("x=NaN big=1e999", [{"x": "NaN", "big": "1e999"}], ()),  # no number the database keeps
        ("name='Ada Lovelace'", [{"name": "Ada Lovelace"}], ()),
        ('name="Ada \\"the\\" Countess"', [{"name": 'Ada "the" Countess'}], ()),
        ('tags=["a", "b"]', [{"tags": ["a", "b"]}], ()),
        ('filter={"kind": "x"}', [{"filter": {"kind": "x"}}], ()),
        ("customer.id=42", [{"customer": {"id": 42}}], ()),
        ("customer.id=42 customer.name=Ada", [{"customer": {"id": 42, "name": "Ada"}}], ()),
        ("a=1 a=2", [{"a": 1}, {"a": 2}], ()),  # both must hold: nothing matches
        ("equation=a=b", [{"equation": "a=b"}], ()),
        ("bad row 7", [], ("bad", "row", "7")),
        ('"bad row" n=3', [{"n": 3}], ("bad row",)),
        ("'a=b'", [], ("a=b",)),  # quoted: text, not an argument
        ("can't connect", [], ("can't", "connect")),  # a quote inside a word is part of it
        ("KeyError: 'customer'", [], ("KeyError:", "customer")),
        ("name=O'Brien", [{"name": "O'Brien"}], ()),
        ("  ", [], ()),
    ],
)
def test_a_search_reads_as_argument_terms_and_words(
    text: str, containments: list[dict[str, Any]], words: tuple[str, ...]
) -> None:
    search = parse_search(text)
    assert search.containments() == containments
    assert search.words == words


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=3", NO_KEY),
        ("n=", NO_VALUE.format(key="n")),
        ("n= 3", NO_VALUE.format(key="n")),
        ("a..b=1", BAD_KEY.format(key="a..b")),
        (".a=1", BAD_KEY.format(key=".a")),
        ('"bad row', UNCLOSED_QUOTE.format(fragment='"bad row')),
        ("name='Ada", UNCLOSED_QUOTE.format(fragment="'Ada")),
        ('n="3"x', AFTER_VALUE.format(key="n", rest="x")),
        ("bad\x00row", NUL),
        (" ".join(["w"] * (MAX_TERMS + 1)), TOO_MANY),
    ],
)
def test_a_search_that_cannot_be_read_says_what_to_type(text: str, message: str) -> None:
    with pytest.raises(SearchError) as raised:
        parse_search(text)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    "text", ['f={"a": ', "f=[1, NaN]", 'x="\\u0000"', '"\\ud800"', "f={'a': 1}"]
)
def test_json_values_that_the_database_cannot_take_are_refused(text: str) -> None:
    with pytest.raises(SearchError):
        parse_search(text)


# PostgreSQL's jsonb @> below the top level, which json_contains stands in for on SQLite.
CONTAINMENT = [
    ({"a": 1, "b": 2}, {"a": 1}, True),
    ({"a": 3.0}, {"a": 3}, True),
    ({"a": 1}, {"a": True}, False),
    ({"a": "1"}, {"a": 1}, False),
    ({"a": None}, {"a": None}, True),
    ({"a": None}, {"b": None}, False),
    ({"a": [1, 2, 3]}, {"a": [3, 1]}, True),
    ({"a": [1, 2]}, {"a": 1}, False),
    ({"a": [{"x": 1, "y": 2}]}, {"a": [{"x": 1}]}, True),
    ({"a": {"b": {"c": "d", "e": 1}}}, {"a": {"b": {"c": "d"}}}, True),
    ({"a": {"b": 1}}, {"b": 1}, False),
    ({"a": [[1, 2]]}, {"a": [1]}, False),
    ({"a": "text"}, {"a": ["text"]}, False),
]


@pytest.mark.parametrize(("held", "wanted", "contained"), CONTAINMENT)
def test_json_contains_is_postgresql_containment(held: Any, wanted: Any, contained: bool) -> None:
    assert json_contains(held, wanted) is contained


@on_postgresql
@pytest.mark.django_db
def test_the_containment_table_is_what_postgresql_answers() -> None:
    with connection.cursor() as cursor:
        for held, wanted, contained in CONTAINMENT:
            cursor.execute("SELECT %s::jsonb @> %s::jsonb", [json.dumps(held), json.dumps(wanted)])
            assert cursor.fetchone()[0] is contained, (held, wanted)


# --- Finding runs -----------------------------------------------------------------------------


def add_run(application: Application, **values: Any) -> TaskRun:
    defaults: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "application": application,
        "task_name": DUMMY,
        "status": "SUCCESS",
        "origin": Origin.PAGE,
        "created_at": NOW,
    }
    return TaskRun.objects.create(**(defaults | values))


def found(application: Application, search: str) -> set[str]:
    filters = RunFilters(search=search)
    return set(
        runs_filtered(application=application, filters=filters, before=None).values_list(
            "id", flat=True
        )
    )


@pytest.fixture
def runs(pages_application: Application, other_pages_application: Application) -> dict[str, str]:
    made = {
        "three": add_run(pages_application, arguments={"n": 3, "name": "Ada"}),
        "three_text": add_run(pages_application, arguments={"n": "3", "name": "Ada Lovelace"}),
        "nested": add_run(
            pages_application,
            arguments={"customer": {"id": 42, "tags": ["vip", "eu"]}, "flag": True},
        ),
        "flag_one": add_run(pages_application, arguments={"flag": 1}),
        # Sent from code without names: the keyword arguments are what the page shows.
        "from_code": add_run(pages_application, arguments=None, kwargs={"n": 3, "flag": True}),
        "failed": add_run(
            pages_application,
            arguments={"n": 4},
            status="FAILURE",
            error_message="KeyError: 'customer'",
        ),
        "other_app": add_run(other_pages_application, arguments={"n": 3}),
    }
    return {run.id: name for name, run in made.items()}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("n=3", {"three", "from_code"}),
        ('n="3"', {"three_text"}),
        ("flag=true", {"nested", "from_code"}),
        ("flag=1", {"flag_one"}),
        ("customer.id=42", {"nested"}),
        ('customer.tags=["eu"]', {"nested"}),
        ("customer.id=43", set()),
        ("n=3 flag=true", {"from_code"}),
        ("name=Ada", {"three"}),
        ("name='Ada Lovelace'", {"three_text"}),
        ("n=4 customer", {"failed"}),  # an argument and a word of the error message
        ("lovelace", {"three_text"}),  # text, case-blind
        ('"keyerror: \'cust"', {"failed"}),
    ],
)
@pytest.mark.django_db
def test_a_search_finds_the_runs_whose_arguments_hold_the_values(
    pages_application: Application, runs: dict[str, str], search: str, expected: set[str]
) -> None:
    assert {runs[i] for i in found(pages_application, search)} == expected


@pytest.mark.django_db
def test_a_text_search_reads_the_newest_runs_only_and_says_from_when(
    pages_application: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "TEXT_SEARCH_RUNS", 3)
    ages = [
        add_run(
            pages_application,
            arguments={"word": "needle", "age": age},
            created_at=NOW - timedelta(minutes=age),
        )
        for age in range(5)
    ]
    newest = {run.id for run in ages[:3]}
    assert found(pages_application, "needle") == newest
    # An argument search is served by its index: it reads every run.
    assert len(found(pages_application, "word=needle")) == 5
    assert (
        text_search_start(application=pages_application, filters=RunFilters(search="needle"))
        == ages[2].created_at
    )
    assert (
        text_search_start(application=pages_application, filters=RunFilters(search="word=needle"))
        is None
    )
    # Reading on from there: the next runs, older than where the first stopped.
    older = runs_filtered(
        application=pages_application,
        filters=RunFilters(search="needle"),
        before=ages[2].created_at,
    )
    assert set(older.values_list("id", flat=True)) == {ages[3].id, ages[4].id}


@on_postgresql
@pytest.mark.django_db
def test_the_arguments_index_serves_an_argument_search(
    pages_application: Application, runs: dict[str, str]
) -> None:
    # The containment of every application's runs: only the index can serve it (not the
    # application's), as the planner does at a million runs (bench/pages.py --explain).
    query = run_search.runs_searched(TaskRun.objects.all(), parse_search("customer.id=42"))
    with connection.cursor() as cursor:
        # A few rows are read faster without an index: forbid the other ways to read them.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
    plan = query.explain()
    assert "Bitmap Index Scan on taskrun_arguments_search" in plan, plan
    assert len(query) == 1


@pytest.mark.django_db
def test_counts_are_of_the_runs_the_search_finds(
    pages_application: Application, runs: dict[str, str]
) -> None:
    add_run(pages_application, arguments={"n": 3}, status="PENDING")
    add_run(pages_application, arguments={"n": 5}, status="PENDING")
    counts = selectors.run_counts(application=pages_application, search="n=3")
    assert (counts.running, counts.queued, counts.failed_last_day) == (0, 1, 0)
    counts = selectors.run_counts(application=pages_application, search="customer")
    assert (counts.running, counts.queued, counts.failed_last_day) == (0, 0, 1)


def test_the_sqlite_function_is_json_contains() -> None:
    assert run_search._sqlite_contains('{"a": {"b": [1, 2]}}', '{"a": {"b": [2]}}')
    assert not run_search._sqlite_contains(None, '{"a": 1}')
