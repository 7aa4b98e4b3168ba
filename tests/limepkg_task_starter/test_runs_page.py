"""The runs page: every run of an application, filtered, counted, followed live."""

from __future__ import annotations

import html
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from lime_task.status import Origin
from limepkg_task_starter import selectors
from limepkg_task_starter.models import Application, AuditEntry, TaskRun
from limepkg_task_starter.run_search import UNCLOSED_QUOTE
from limepkg_task_starter.selectors import RUNS_PER_PAGE
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

PAGE = "/admin/task-starter/demo/runs/"
NOW = timezone.now()


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


@pytest.fixture
def viewer(pages_application: Application) -> Client:
    client = Client()
    client.force_login(
        make_user("viewer", perms=("view", "start"), applications=(pages_application,))
    )
    return client


def shown(response: Any) -> list[str]:
    return [run.id for run in response.context["runs"]]


def test_every_task_newest_first_and_only_this_applications(
    viewer: Client, pages_application: Application, other_pages_application: Application
) -> None:
    old = add_run(pages_application, created_at=NOW - timedelta(hours=2))
    new = add_run(pages_application, task_name=EXAMPLE, created_at=NOW - timedelta(minutes=1))
    add_run(other_pages_application)

    response = viewer.get(PAGE)
    assert response.status_code == 200
    assert shown(response) == [new.id, old.id]
    assert "example_task" in response.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "FAILURE"}, ["failed"]),
        ({"task": EXAMPLE}, ["example"]),
        ({"origin": "api"}, ["by_api"]),
        ({"user": "integration-user"}, ["impersonated"]),
        ({"since": (NOW - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")}, ["failed"]),
        ({"until": (NOW - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")}, ["example", "old"]),
        ({"q": "KeyError: 'customer'"}, ["failed"]),  # the error message
        ({"q": "needle"}, ["by_api"]),  # the arguments
        ({"q": "haystack"}, ["impersonated"]),  # the result
    ],
)
def test_filters_and_search(
    viewer: Client, pages_application: Application, query: dict[str, str], expected: list[str]
) -> None:
    runs = {
        "failed": add_run(
            pages_application,
            status="FAILURE",
            error_message="KeyError: 'customer'",
            created_at=NOW - timedelta(minutes=5),
        ),
        "by_api": add_run(
            pages_application,
            origin=Origin.API,
            arguments={"text": "a needle"},
            created_at=NOW - timedelta(minutes=40),
        ),
        "impersonated": add_run(
            pages_application,
            run_as="integration-user",
            result={"found": "haystack"},
            created_at=NOW - timedelta(minutes=45),
        ),
        "example": add_run(
            pages_application, task_name=EXAMPLE, created_at=NOW - timedelta(hours=1)
        ),
        "old": add_run(pages_application, created_at=NOW - timedelta(days=3)),
    }
    if "until" in query:
        # Only the runs before 30 minutes ago that no other row of the table covers.
        TaskRun.objects.filter(id__in=[runs["by_api"].id, runs["impersonated"].id]).delete()
    names = {run.id: name for name, run in runs.items()}
    assert [names[key] for key in shown(viewer.get(PAGE, query))] == expected


def test_a_filter_that_does_not_fit_is_said_at_its_field_and_the_page_still_answers(
    viewer: Client, pages_application: Application
) -> None:
    run = add_run(pages_application)
    response = viewer.get(PAGE, {"status": "EXPLODED", "since": "yesterday-ish"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Select a valid choice" in page and "Enter a valid date/time" in page
    # Each message is tied to its field for assistive technology.
    assert 'aria-invalid="true" aria-describedby="id_status_error"' in page
    assert 'id="id_status_error"' in page and 'id="id_since_error"' in page
    assert shown(response) == [run.id]  # the bad filters filter nothing


def test_counts_running_queued_and_failed_in_the_last_day(
    viewer: Client, pages_application: Application, other_pages_application: Application
) -> None:
    add_run(pages_application, status="STARTED")
    add_run(pages_application, status="PENDING")
    add_run(pages_application, status="PENDING")
    add_run(pages_application, status="FAILURE")
    add_run(pages_application, status="FAILURE", created_at=NOW - timedelta(days=2))
    add_run(other_pages_application, status="FAILURE")

    counts = viewer.get(PAGE).context["counts"]
    assert (counts.running, counts.queued, counts.failed_last_day) == (1, 2, 1)


def test_the_same_queries_for_5_runs_as_for_a_full_page(
    viewer: Client, pages_application: Application
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(PAGE).status_code == 200
        return len(captured)

    for _ in range(5):
        add_run(pages_application, started_by=make_user(f"u{uuid.uuid4().hex[:6]}"))
    few = queries()
    for _ in range(RUNS_PER_PAGE + 10):
        add_run(pages_application, started_by=make_user(f"u{uuid.uuid4().hex[:6]}"))
    assert queries() == few


def test_older_pages_and_the_live_part_polls_only_on_the_newest(
    viewer: Client, pages_application: Application
) -> None:
    runs = [
        add_run(pages_application, created_at=NOW - timedelta(seconds=n))
        for n in range(RUNS_PER_PAGE + 5)
    ]
    first = viewer.get(PAGE)
    assert shown(first) == [run.id for run in runs[:RUNS_PER_PAGE]]
    assert 'hx-trigger="every 1s"' in first.content.decode()
    older = viewer.get(PAGE, {"before": first.context["older"]})
    assert shown(older) == [run.id for run in runs[RUNS_PER_PAGE:]]
    assert "hx-trigger" not in older.content.decode() and older.context["older"] == ""

    live = viewer.get(f"{PAGE}live/")
    assert live.status_code == 200
    assert 'id="runs-live"' in live.content.decode() and "<html" not in live.content.decode()
    add_run(pages_application, task_name=EXAMPLE, created_at=NOW + timedelta(seconds=1))
    assert "example_task" in viewer.get(f"{PAGE}live/").content.decode()


def test_a_failure_shows_its_message_to_everyone_who_may_see_the_run(
    pages_application: Application,
) -> None:
    add_run(
        pages_application,
        status="FAILURE",
        error_type="builtins.ValueError",
        error_message="customer 7 has no <email>",
        traceback="Traceback: secret frame",
    )
    client = Client()
    client.force_login(make_user("reader", perms=("view",), applications=(pages_application,)))
    page = client.get(PAGE).content.decode()
    assert "ValueError</code>: customer 7 has no &lt;email&gt;" in page
    assert "secret frame" not in page


def test_retry_asks_first_then_starts_each_through_the_policy(
    viewer: Client, pages_application: Application, other_pages_application: Application
) -> None:
    failed = [
        add_run(
            pages_application,
            status="FAILURE",
            arguments={"number": n, "numberx": 1},
            kwargs={"number": n, "numberx": 1},
            run_as="viewer",
        )
        for n in (1, 2)
    ]
    foreign = add_run(other_pages_application, status="FAILURE")
    ids = [run.id for run in failed] + [foreign.id]

    asked = viewer.post(f"{PAGE}retry/", {"run": ids})
    assert asked.status_code == 200
    assert asked.context["title"] == "Retry 2 runs?"
    assert "&quot;number&quot;: 2" in asked.content.decode()
    assert TaskRun.objects.count() == 3

    done = viewer.post(f"{PAGE}retry/", {"run": ids, "confirm": "yes", "next": PAGE})
    reruns = TaskRun.objects.filter(rerun_of__in=failed)
    assert done.status_code == 302
    assert done["Location"] in {f"{PAGE}#run-{rerun.id}" for rerun in reruns}  # at a new row
    assert sorted(run.arguments["number"] for run in reruns) == [1, 2]
    assert AuditEntry.objects.filter(action="rerun").count() == 2
    assert not TaskRun.objects.filter(rerun_of=foreign).exists()


def test_retry_with_nothing_selected_says_so(
    viewer: Client, pages_application: Application
) -> None:
    response = viewer.post(f"{PAGE}retry/", {"confirm": "yes"}, follow=True)
    assert "Select the runs to retry first." in response.content.decode()


def test_next_never_leaves_the_site(viewer: Client, pages_application: Application) -> None:
    run = add_run(pages_application, status="FAILURE", arguments={"number": 1, "numberx": 1})
    response = viewer.post(
        f"/admin/task-starter/runs/{run.id}/rerun/", {"next": "https://evil.example/"}
    )
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/task-starter/demo/tasks/")


@pytest.mark.parametrize("status", ["SUCCESS", "PENDING", "STARTED", "REVOKED"])
def test_retry_starts_only_failed_runs_and_names_the_others(
    viewer: Client, pages_application: Application, status: str
) -> None:
    failed = add_run(pages_application, status="FAILURE", arguments={"number": 1, "numberx": 1})
    other = add_run(pages_application, status=status, arguments={"number": 2, "numberx": 1})

    done = viewer.post(
        f"{PAGE}retry/", {"run": [failed.id, other.id], "confirm": "yes"}, follow=True
    )

    assert TaskRun.objects.filter(rerun_of=failed).count() == 1
    assert not TaskRun.objects.filter(rerun_of=other).exists()
    assert f"({other.id}) was not started again: only failed runs are retried" in (
        done.content.decode()
    )


@pytest.mark.parametrize(
    "before",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:01+01:00", "2026-13-45T99:00", "x\x00"],
)
def test_a_cursor_the_database_cannot_hold_starts_at_the_newest(
    viewer: Client, pages_application: Application, before: str
) -> None:
    run = add_run(pages_application)
    response = viewer.get(PAGE, {"before": before})
    assert response.status_code == 200
    assert shown(response) == [run.id]


def test_the_status_filter_says_cancelled_as_the_rows_do(viewer: Client) -> None:
    page = viewer.get(PAGE).content.decode()
    assert '<option value="REVOKED">Cancelled</option>' in page
    assert "Revoked" not in page


def test_a_running_run_shows_how_long_it_has_run_so_far(
    viewer: Client, pages_application: Application
) -> None:
    add_run(
        pages_application,
        id="running",
        status="STARTED",
        created_at=timezone.now() - timedelta(seconds=95),
        started_at=timezone.now() - timedelta(seconds=90),
    )
    page = viewer.get(PAGE).content.decode()
    assert ">1 min 30 s so far</td>" in page or ">1 min 31 s so far</td>" in page


def test_retrying_waits_for_a_ticked_run_and_one_box_ticks_them_all(
    viewer: Client, pages_application: Application
) -> None:
    add_run(pages_application, status="FAILURE")
    page = viewer.get(PAGE).content.decode()
    assert 'id="retry-selected" disabled>Retry selected failed runs</button>' in page
    assert '<input type="checkbox" id="select-failed" disabled> Select all failed runs' in page


def test_a_retried_failure_links_its_retry_is_not_selectable_and_counts_once(
    viewer: Client, pages_application: Application
) -> None:
    retried = add_run(pages_application, status="FAILURE")
    retry = add_run(pages_application, status="FAILURE", rerun_of=retried, origin=Origin.RERUN)
    add_run(pages_application, status="FAILURE")

    response = viewer.get(PAGE)
    page = response.content.decode()
    assert response.context["counts"].failed_last_day == 2  # the retry and the other, not both
    assert f'value="{retried.id}"' not in page  # no box: it cannot be retried twice by mistake
    assert f'value="{retry.id}"' in page
    assert (
        f'Retried → <a href="/admin/task-starter/runs/{retry.id}/" title="{retry.id}">'
        f"{retry.id[:8]}</a>"
    ) in page
    assert f'of <a href="/admin/task-starter/runs/{retried.id}/" class="ts-rerun-of"' in page


def test_retry_leaves_out_a_run_already_retried_and_links_each_new_run(
    viewer: Client, pages_application: Application
) -> None:
    arguments = {"number": 1, "numberx": 1}
    retried = add_run(pages_application, status="FAILURE", arguments=arguments, run_as="viewer")
    earlier = add_run(pages_application, status="FAILURE", rerun_of=retried, arguments=arguments)
    failed = add_run(pages_application, status="FAILURE", arguments=arguments, run_as="viewer")

    response = viewer.post(
        f"{PAGE}retry/", {"run": [retried.id, failed.id], "confirm": "yes"}, follow=True
    )
    new = TaskRun.objects.get(rerun_of=failed)
    assert not TaskRun.objects.filter(rerun_of=retried).exclude(id=earlier.id).exists()
    page = response.content.decode()
    assert (
        f'Started 1 run again: <a href="/admin/task-starter/runs/{new.id}/">{new.id[:8]}</a>'
    ) in page
    earlier_info = f"/admin/task-starter/runs/{earlier.id}/"
    assert f'was not started again: it was retried already, as <a href="{earlier_info}">' in page


def test_a_search_that_cannot_be_read_is_said_at_the_field_and_kept(
    viewer: Client, pages_application: Application
) -> None:
    run = add_run(pages_application, arguments={"n": 3})
    for url in (PAGE, f"{PAGE}live/"):
        response = viewer.get(url, {"q": 'n=3 name="Ada', "status": "SUCCESS"})
        assert response.status_code == 200
        assert shown(response) == [run.id]  # the other filters still apply
    response = viewer.get(PAGE, {"q": 'n=3 name="Ada'})
    page = response.content.decode()
    assert UNCLOSED_QUOTE.format(fragment='"Ada') in html.unescape(page)
    assert 'aria-invalid="true" aria-describedby="id_q_helptext id_q_error"' in page
    assert 'value="n=3 name=&quot;Ada"' in page  # what was typed, to correct


def test_an_argument_search_finds_its_runs_live_and_in_the_counts(
    viewer: Client, pages_application: Application
) -> None:
    add_run(pages_application, arguments={"customer": {"id": 7}}, status="PENDING")
    match = add_run(pages_application, arguments={"customer": {"id": 42}}, status="PENDING")
    response = viewer.get(PAGE, {"q": "customer.id=42"})
    assert shown(response) == [match.id]
    assert response.context["counts"].queued == 1
    assert "?status=PENDING&amp;q=customer.id%3D42" in response.content.decode()
    live = viewer.get(f"{PAGE}live/", {"q": "customer.id=42"})
    assert shown(live) == [match.id]


def test_a_text_search_says_how_far_back_it_read_and_reads_on_from_there(
    viewer: Client, pages_application: Application, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "TEXT_SEARCH_RUNS", 2)
    runs = [
        add_run(pages_application, result="needle", created_at=NOW - timedelta(minutes=n))
        for n in range(3)
    ]
    response = viewer.get(PAGE, {"q": "needle"})
    assert shown(response) == [runs[0].id, runs[1].id]
    window = response.content.decode().split('id="search-window"')[1].split("</p>")[0]
    assert "Text search reads 2 runs at a time" in window
    assert 'hx-trigger="every 5s"' in response.content.decode()  # followed, at a slower pace
    further = html.unescape(window.split('href="')[1].split('"')[0])
    assert shown(viewer.get(PAGE + further)) == [runs[2].id]
    # An argument search reads every run, and says nothing of the kind.
    assert 'id="search-window"' not in viewer.get(PAGE, {"q": "n=1"}).content.decode()


def test_the_live_poll_with_a_search_makes_the_same_queries_for_many_runs(
    viewer: Client, pages_application: Application
) -> None:
    def queries(search: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(f"{PAGE}live/", {"q": search}).status_code == 200
        return len(captured)

    add_run(pages_application, arguments={"n": 1}, result="needle")
    few = (queries("n=1"), queries("needle"))
    for _ in range(RUNS_PER_PAGE + 10):
        add_run(pages_application, arguments={"n": 1}, result="needle")
    assert (queries("n=1"), queries("needle")) == few


def test_the_task_filter_renders_as_djangos_own_select_would() -> None:
    # LongSelect builds the thousand-option select in one pass; the markup must not differ.
    from django import forms
    from django.test.html import parse_html

    from limepkg_task_starter.forms import LongSelect

    choices = [("", "any"), ("a.b.<script>", 'quote " & <tag>'), ("a.b.c", "c")]
    ours = LongSelect(choices=choices).render("task", "a.b.c", {"id": "filter-task"})
    djangos = forms.Select(choices=choices).render("task", "a.b.c", {"id": "filter-task"})
    assert parse_html(ours) == parse_html(djangos)
    assert "<script>" not in ours
