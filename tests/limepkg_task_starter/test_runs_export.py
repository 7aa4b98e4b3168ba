"""Export CSV: the runs the page's filter matches, streamed, capped, for those who may see the
page, with cells a spreadsheet would run as formulas neutralised."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.http import StreamingHttpResponse
from django.test import Client
from django.utils import timezone

from lime_task.status import Origin
from limepkg_task_starter import selectors
from limepkg_task_starter.models import Application, TaskRun
from limepkg_task_starter.pages.runs_export import COLUMNS, neutralised
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

EXPORT = "/admin/task-starter/demo/runs/export.csv"


def add_run(application: Application, *, minutes_ago: float = 0, **values: Any) -> TaskRun:
    defaults: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "application": application,
        "task_name": DUMMY,
        "status": "SUCCESS",
        "origin": Origin.PAGE,
        "created_at": timezone.now() - timedelta(minutes=minutes_ago),
    }
    return TaskRun.objects.create(**(defaults | values))


@pytest.fixture
def viewer(pages_application: Application) -> Client:
    client = Client()
    client.force_login(make_user("viewer", perms=("view",), applications=(pages_application,)))
    return client


def rows(response: Any) -> list[dict[str, str]]:
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_the_filters_runs_newest_first_as_a_streamed_attachment(
    viewer: Client, pages_application: Application, other_pages_application: Application
) -> None:
    old = add_run(pages_application, minutes_ago=5, arguments={"number": 1}, result=5)
    new = add_run(pages_application, minutes_ago=1, status="FAILURE", error_message="boom")
    add_run(pages_application, task_name=EXAMPLE)
    add_run(other_pages_application)

    response = viewer.get(EXPORT, {"task": DUMMY})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="runs-demo-')
    found = rows(response)
    assert [row["id"] for row in found] == [new.id, old.id]
    assert list(found[0]) == list(COLUMNS)
    assert (found[0]["status"], found[0]["error message"]) == ("Failure", "boom")
    assert (found[1]["arguments"], found[1]["result"]) == ('{"number": 1}', "5")
    assert found[1]["task"] == DUMMY


def test_a_cancelled_run_reads_cancelled(viewer: Client, pages_application: Application) -> None:
    add_run(pages_application, status="REVOKED", cancelled_at=timezone.now())
    assert rows(viewer.get(EXPORT))[0]["status"] == "Cancelled"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
    ],
)
def test_cells_a_spreadsheet_would_run_get_an_apostrophe(
    viewer: Client, pages_application: Application, value: str, cell: str
) -> None:
    assert neutralised(value) == cell
    add_run(pages_application, status="FAILURE", error_message=value, run_as=value, result=value)
    row = rows(viewer.get(EXPORT))[0]
    assert row["error message"] == cell
    assert row["run as"] == cell
    assert not row["result"].startswith(("=", "+", "-", "@"))


def test_at_most_the_cap_newest_first(
    viewer: Client, pages_application: Application, monkeypatch: Any
) -> None:
    monkeypatch.setattr(selectors, "MAX_EXPORT_ROWS", 3)
    runs = [add_run(pages_application, minutes_ago=n) for n in range(5)]
    assert [row["id"] for row in rows(viewer.get(EXPORT))] == [run.id for run in runs[:3]]


def test_a_filter_that_does_not_fit_filters_nothing_as_on_the_page(
    viewer: Client, pages_application: Application
) -> None:
    add_run(pages_application)
    assert len(rows(viewer.get(EXPORT, {"status": "NOPE", "since": "yesterday"}))) == 1


def test_only_for_those_who_may_see_the_runs_page(
    pages_application: Application, other_pages_application: Application
) -> None:
    add_run(pages_application)
    nobody = Client()
    nobody.force_login(make_user("starter", perms=("start",), applications=(pages_application,)))
    assert nobody.get(EXPORT).status_code == 403
    stranger = Client()
    stranger.force_login(
        make_user("stranger", perms=("view",), applications=(other_pages_application,))
    )
    assert stranger.get(EXPORT).status_code == 404
    assert Client().get(EXPORT).status_code == 302  # to the login
