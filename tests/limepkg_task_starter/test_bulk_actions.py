"""Retry all / Cancel all over the runs page's whole filter: the confirmation names the count
and the filter, the work goes on in the background through the same services as one retry or
cancel, capped, and audited as one bulk action with its items."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from lime_task.status import Origin
from limepkg_task_starter import selectors
from limepkg_task_starter.models import (
    Application,
    AuditEntry,
    BulkAction,
    BulkActionState,
    TaskRun,
)
from limepkg_task_starter.selectors import RUNS_PER_PAGE
from limepkg_task_starter.services import bulk
from tests.limepkg_task_starter.conftest import DUMMY, EXAMPLE, make_user

PAGE = "/admin/task-starter/demo/runs/"
MORE_THAN_A_PAGE = RUNS_PER_PAGE + 10


def add_run(application: Application, *, minutes_ago: float = 0, **values: Any) -> TaskRun:
    defaults: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "application": application,
        "task_name": DUMMY,
        "status": "FAILURE",
        "arguments": {"number": 1, "numberx": 2},
        "run_as": "boss",
        "origin": Origin.PAGE,
        "created_at": timezone.now() - timedelta(minutes=minutes_ago),
    }
    return TaskRun.objects.create(**(defaults | values))


def client_for(application: Application, *perms: str, username: str = "boss") -> Client:
    client = Client()
    client.force_login(make_user(username, perms=perms, applications=(application,)))
    return client


def wait_until(check: Callable[[], Any], seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def finished(action_id: int) -> Callable[[], Any]:
    return lambda: (
        BulkAction.objects.exclude(state=BulkActionState.RUNNING).filter(id=action_id).first()
    )


@pytest.fixture
def failed_runs(pages_application: Application) -> list[TaskRun]:
    """More failed runs of the dummy task than one page shows, and runs the filter leaves out."""
    runs = [add_run(pages_application, minutes_ago=n) for n in range(MORE_THAN_A_PAGE)]
    add_run(pages_application, task_name=EXAMPLE, arguments={})
    add_run(pages_application, status="SUCCESS")
    return runs


def test_the_runs_page_offers_both_for_the_whole_filter(
    pages_application: Application, failed_runs: list[TaskRun]
) -> None:
    add_run(pages_application, status="PENDING")
    client = client_for(pages_application, "view", "start", "cancel")
    page = client.get(PAGE, {"task": DUMMY}).content.decode()
    assert f"Retry all {MORE_THAN_A_PAGE} failed runs matching</a>" in page
    assert "Cancel all 1 waiting run matching</a>" in page  # one run, one "run"
    assert f"retry-all/?task={DUMMY}" in page
    assert f'href="{PAGE}export.csv?task={DUMMY}"' in page


def test_each_is_offered_only_with_its_permission(
    pages_application: Application, failed_runs: list[TaskRun]
) -> None:
    add_run(pages_application, status="PENDING")
    page = client_for(pages_application, "view").get(PAGE).content.decode()
    assert "Retry all" not in page and "Cancel all" not in page
    assert (
        client_for(pages_application, "view", username="v2").get(f"{PAGE}retry-all/").status_code
        == 403
    )


def test_the_confirmation_names_the_count_and_the_filter(
    pages_application: Application, failed_runs: list[TaskRun]
) -> None:
    client = client_for(pages_application, "view", "start")
    response = client.get(f"{PAGE}retry-all/", {"task": DUMMY, "q": "number"})
    page = response.content.decode()
    assert response.context["title"] == f"Retry all {MORE_THAN_A_PAGE} failed runs matching?"
    assert "Task: dummy_task · Search: number" in page
    assert f">Retry {MORE_THAN_A_PAGE} runs</button>" in page
    assert f'name="filter" value="task={DUMMY}&amp;q=number"' in page
    assert "More than" not in page
    assert not BulkAction.objects.exists()


def test_the_confirmation_says_when_the_cap_applies(
    pages_application: Application, failed_runs: list[TaskRun], monkeypatch: Any
) -> None:
    monkeypatch.setattr(selectors, "MAX_BULK_ITEMS", 5)
    page = client_for(pages_application, "view", "start").get(f"{PAGE}retry-all/")
    text = page.content.decode()
    assert page.context["title"] == "Retry all 5 failed runs matching?"
    assert "More than 5 runs match: only the newest 5 are retried now." in text


@pytest.mark.django_db(transaction=True)
def test_retry_all_retries_every_failed_run_matching_in_the_background(
    pages_application: Application, failed_runs: list[TaskRun]
) -> None:
    client = client_for(pages_application, "view", "start")
    response = client.post(f"{PAGE}retry-all/", {"filter": f"task={DUMMY}", "confirm": "yes"})
    action = BulkAction.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{PAGE}bulk/{action.id}/"

    wait_until(finished(action.id))
    retried = TaskRun.objects.filter(rerun_of__in=failed_runs)
    assert retried.count() == MORE_THAN_A_PAGE  # not only the first page
    assert set(retried.values_list("origin", flat=True)) == {Origin.RERUN}
    assert not TaskRun.objects.filter(rerun_of__task_name=EXAMPLE).exists()

    progress = client.get(response["Location"])
    assert "Done." in progress.content.decode()
    assert f"{MORE_THAN_A_PAGE} of {MORE_THAN_A_PAGE}: {MORE_THAN_A_PAGE} retried, 0 refused" in (
        progress.content.decode()
    )
    # Audited as one bulk action with its items, and each retry names the bulk action.
    entry = AuditEntry.objects.get(action="bulk_retry")
    assert sorted(entry.arguments["runs"]) == sorted(run.id for run in failed_runs)
    assert entry.arguments["filter"] == f"task={DUMMY}"
    assert f"retry all {MORE_THAN_A_PAGE} failed runs matching Task: dummy_task" in entry.detail
    reruns = AuditEntry.objects.filter(action="rerun")
    assert reruns.count() == MORE_THAN_A_PAGE
    assert all(f"bulk action {action.id}" in e.detail for e in reruns)


@pytest.mark.django_db(transaction=True)
def test_each_item_goes_through_the_start_policy(pages_application: Application) -> None:
    mine = add_run(pages_application)
    impersonated = add_run(pages_application, run_as="integration-user")
    client = client_for(pages_application, "view", "start")
    client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"})
    action = wait_until(finished(BulkAction.objects.get().id))

    assert TaskRun.objects.filter(rerun_of=mine).count() == 1
    assert not TaskRun.objects.filter(rerun_of=impersonated).exists()
    item = action.items.get(run_id=impersonated.id)
    assert (item.outcome, item.message) == (
        "refused",
        "You may not start tasks as integration-user.",
    )
    page = client.get(f"{PAGE}bulk/{action.id}/").content.decode()
    assert "1 retried, 1 refused" in page
    assert "You may not start tasks as integration-user." in page


@pytest.mark.django_db(transaction=True)
def test_cancel_all_cancels_only_waiting_runs(pages_application: Application) -> None:
    waiting = [add_run(pages_application, status="PENDING", minutes_ago=n) for n in range(3)]
    running = add_run(pages_application, status="STARTED")
    client = client_for(pages_application, "view", "cancel")
    confirm = client.get(f"{PAGE}cancel-all/")
    assert confirm.context["title"] == "Cancel all 3 waiting runs matching?"
    assert "ts-danger" in confirm.content.decode()

    client.post(f"{PAGE}cancel-all/", {"filter": "", "confirm": "yes"})
    wait_until(finished(BulkAction.objects.get().id))
    assert set(
        TaskRun.objects.filter(id__in=[r.id for r in waiting]).values_list("status", flat=True)
    ) == {"REVOKED"}
    assert TaskRun.objects.get(id=running.id).status == "STARTED"
    assert AuditEntry.objects.filter(action="cancel").count() == 3
    assert AuditEntry.objects.filter(action="bulk_cancel").count() == 1


def test_only_the_newest_up_to_the_cap_are_taken(
    pages_application: Application, failed_runs: list[TaskRun], monkeypatch: Any
) -> None:
    monkeypatch.setattr(selectors, "MAX_BULK_ITEMS", 5)
    client = client_for(pages_application, "view", "start")
    client.post(f"{PAGE}retry-all/", {"filter": f"task={DUMMY}", "confirm": "yes"})
    action = BulkAction.objects.get()
    assert list(action.items.values_list("run_id", flat=True)) == [r.id for r in failed_runs[:5]]
    assert action.matched == 6  # counted one past the cap: "more match"

    bulk.bulk_action_process(action_id=action.id, lease=action.lease)
    assert TaskRun.objects.filter(rerun_of__in=failed_runs[:5]).count() == 5
    assert not TaskRun.objects.filter(rerun_of__in=failed_runs[5:]).exists()


def test_one_bulk_action_at_a_time_per_application(
    pages_application: Application, failed_runs: list[TaskRun]
) -> None:
    client = client_for(pages_application, "view", "start")
    client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"})
    again = client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"}, follow=True)
    assert BulkAction.objects.count() == 1
    assert bulk.BUSY.format(application="demo") in again.content.decode()


def test_nothing_matching_is_said_and_nothing_is_recorded(
    pages_application: Application,
) -> None:
    add_run(pages_application, status="SUCCESS")
    client = client_for(pages_application, "view", "start")
    confirm = client.get(f"{PAGE}retry-all/").content.decode()
    assert "No failed run matches this filter" in confirm
    assert "<button" not in confirm.split('id="content-main"')[1]
    done = client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"}, follow=True)
    assert "No run matches: there is nothing to retry." in done.content.decode()
    assert not BulkAction.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_run_retried_meanwhile_is_refused_not_started_twice(
    pages_application: Application,
) -> None:
    run = add_run(pages_application)
    client = client_for(pages_application, "view", "start")
    client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"})
    action = BulkAction.objects.get()
    add_run(pages_application, rerun_of=run, status="PENDING")  # a ticked retry got there first

    bulk.bulk_action_process(action_id=action.id, lease=action.lease)
    item = action.items.get()
    assert item.outcome == "refused"
    assert "it was retried already" in item.message
    assert TaskRun.objects.filter(rerun_of=run).count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_action_whose_process_stopped_is_taken_over_when_its_progress_is_looked_at(
    pages_application: Application, failed_runs: list[TaskRun], monkeypatch: Any
) -> None:
    # As if its web process had stopped right after the confirmation: no thread was started.
    monkeypatch.setattr(bulk, "_in_background", lambda action_id, lease: None)
    client = client_for(pages_application, "view", "start")
    client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"})
    action = BulkAction.objects.get()
    monkeypatch.undo()

    client.get(f"{PAGE}bulk/{action.id}/")  # its lease is fresh: left alone
    assert not TaskRun.objects.filter(rerun_of__isnull=False).exists()
    BulkAction.objects.filter(id=action.id).update(
        heartbeat_at=timezone.now() - bulk.STALE_AFTER - timedelta(seconds=1)
    )
    client.get(f"{PAGE}bulk/{action.id}/")
    wait_until(finished(action.id))
    assert TaskRun.objects.filter(rerun_of__in=failed_runs).count() == MORE_THAN_A_PAGE


def test_a_processor_whose_lease_was_taken_over_stops(
    pages_application: Application, failed_runs: list[TaskRun]
) -> None:
    client = client_for(pages_application, "view", "start")
    client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"})
    action = BulkAction.objects.get()
    bulk.bulk_action_process(action_id=action.id, lease="an old lease")
    assert not TaskRun.objects.filter(rerun_of__isnull=False).exists()
    assert BulkAction.objects.get().state == BulkActionState.RUNNING


def test_the_progress_is_polled_until_done_and_of_this_application_only(
    pages_application: Application, other_pages_application: Application
) -> None:
    add_run(pages_application)
    client = client_for(pages_application, "view", "start")
    client.post(f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"})
    action = BulkAction.objects.get()
    url = f"{PAGE}bulk/{action.id}/"
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 200
    bulk.bulk_action_process(action_id=action.id, lease=action.lease)
    assert client.get(url, HTTP_HX_REQUEST="true").status_code == 286  # htmx: stop polling
    other = client_for(other_pages_application, "view", "start", username="stranger")
    assert other.get(url).status_code == 404
    assert other.get(f"/admin/task-starter/other/runs/bulk/{action.id}/").status_code == 404
    assert client.get(PAGE).context["bulk_recent"][0].action == action


def test_the_live_poll_does_not_count_them_again(
    pages_application: Application, failed_runs: list[TaskRun]
) -> None:
    client = client_for(pages_application, "view", "start")
    live = client.get(f"{PAGE}live/", {"task": DUMMY})
    assert "bulk" not in live.context
    assert "Retry all" not in live.content.decode()


def test_the_admin_lists_bulk_actions_with_their_items_read_only(
    pages_application: Application, other_pages_application: Application
) -> None:
    run = add_run(pages_application)
    client_for(pages_application, "view", "start").post(
        f"{PAGE}retry-all/", {"filter": "", "confirm": "yes"}
    )
    action = BulkAction.objects.get()
    reader = client_for(pages_application, "view", username="reader")
    User.objects.get(username="reader").user_permissions.add(
        Permission.objects.get(codename="view_bulkaction")
    )
    page = reader.get(f"/admin/limepkg_task_starter/bulkaction/{action.id}/change/")
    assert page.status_code == 200
    assert run.id in page.content.decode()
    stranger = client_for(other_pages_application, "view", username="stranger")
    stranger_user = User.objects.get(username="stranger")
    stranger_user.user_permissions.add(Permission.objects.get(codename="view_bulkaction"))
    assert (
        stranger.get(f"/admin/limepkg_task_starter/bulkaction/{action.id}/change/").status_code
        == 302  # to the admin index: not one of theirs
    )
