"""Cancelling a run: refused without the permission or once it has ended; a waiting run never
starts; a worker's later word is kept."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from lime_task.status import Origin, State
from limepkg_task_starter.models import Application, AuditEntry, TaskRun
from limepkg_task_starter.services import cancelling
from limepkg_task_starter.services.maintenance import worker_heartbeat
from limepkg_task_starter.services.worker import run_mark_finished, run_mark_started
from tests.limepkg_task_starter.conftest import DUMMY, make_user, started_on


@pytest.fixture
def revoked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """What was broadcast to the task handlers (the broker is not the subject here)."""
    sent: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        cancelling, "_revoke", lambda task_id, *, terminate: sent.append((task_id, terminate))
    )
    return sent


def open_run(application: Application, status: str, worker: str = "") -> TaskRun:
    return TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=application,
        task_name=DUMMY,
        arguments={"number": 1, "numberx": 2},
        status=status,
        worker=worker,
        origin=Origin.PAGE,
        created_at=timezone.now(),
    )


@pytest.fixture
def canceller(pages_application: Application) -> Any:
    return make_user("stopper", perms=("view", "cancel"), applications=(pages_application,))


@pytest.mark.django_db(transaction=True)
def test_a_waiting_run_is_cancelled_audited_and_never_starts(
    pages_application: Application, canceller: Any, revoked: list[tuple[str, bool]]
) -> None:
    run = open_run(pages_application, State.PENDING)
    cancelling.run_cancel(actor=canceller, run=run)

    run.refresh_from_db()
    assert (run.status, run.cancelled_by, run.reason) == (
        "REVOKED",
        canceller,
        "Cancelled by stopper before it started.",
    )
    assert revoked == [(run.id, False)]
    entry = AuditEntry.objects.get(action="cancel")
    assert (entry.run_id, entry.actor, entry.arguments) == (run.id, canceller, run.arguments)

    # The message reaches a worker anyway: it learns the run was cancelled and does not run it.
    assert run_mark_started(started=started_on(run, "w1@host"), at=timezone.now()) is False
    run.refresh_from_db()
    assert run.status == "REVOKED" and run.worker == ""


@pytest.mark.django_db(transaction=True)
def test_a_running_run_is_terminated_and_its_workers_confirmation_kept(
    pages_application: Application, canceller: Any, revoked: list[tuple[str, bool]]
) -> None:
    run = open_run(pages_application, State.STARTED, worker="w1@host")
    worker_heartbeat(hostname="w1@host")
    cancelling.run_cancel(actor=canceller, run=run)
    assert revoked == [(run.id, True)]

    run_mark_finished(
        task_id=run.id,
        status=State.REVOKED,
        at=timezone.now(),
        reason="Terminated.",
        worker="w1@host",
    )
    run.refresh_from_db()
    assert run.status == "REVOKED"
    assert run.reason == "Cancelled by stopper while it ran; its worker was told to stop it."
    assert run.later_reports.startswith("w1@host stopped it at")


def test_a_run_that_finished_before_the_cancel_arrived_keeps_its_outcome(
    pages_application: Application, canceller: Any, revoked: list[tuple[str, bool]]
) -> None:
    run = open_run(pages_application, State.STARTED, worker="w1@host")
    finished = timezone.now()
    cancelling.run_cancel(actor=canceller, run=run)  # the worker's report is on its way
    run_mark_finished(
        task_id=run.id, status=State.SUCCESS, at=finished, result=10, worker="w1@host"
    )
    run.refresh_from_db()
    assert (run.status, run.result) == ("SUCCESS", 10)
    assert "had already finished it: SUCCESS" in run.later_reports


def test_a_run_its_worker_did_not_stop_says_it_finished_after_the_cancel(
    pages_application: Application, canceller: Any, revoked: list[tuple[str, bool]]
) -> None:
    run = open_run(pages_application, State.STARTED, worker="w1@host")
    cancelled = cancelling.run_cancel(actor=canceller, run=run).cancelled_at
    assert cancelled is not None
    run_mark_finished(
        task_id=run.id,
        status=State.SUCCESS,
        at=cancelled + timedelta(seconds=25),
        result=10,
        worker="w1@host",
    )
    run.refresh_from_db()
    assert (run.status, run.result) == ("SUCCESS", 10)
    assert "had already finished" not in run.later_reports
    assert "w1@host did not stop it: it went on and finished SUCCESS" in run.later_reports
    assert "25.0 s later" in run.later_reports


def test_refused_without_the_permission_or_once_ended(
    pages_application: Application, revoked: list[tuple[str, bool]]
) -> None:
    viewer = make_user("viewer", perms=("view", "start"), applications=(pages_application,))
    with pytest.raises(cancelling.CancelRefusedError):
        cancelling.run_cancel(actor=viewer, run=open_run(pages_application, State.PENDING))
    allowed = make_user("stopper", perms=("view", "cancel"), applications=(pages_application,))
    done = open_run(pages_application, State.SUCCESS)
    with pytest.raises(cancelling.RunNotOpenError, match="already ended \\(Success\\)"):
        cancelling.run_cancel(actor=allowed, run=done)
    assert revoked == [] and not AuditEntry.objects.exists()


def test_the_page_asks_first_and_names_who_cancelled(
    pages_application: Application, canceller: Any, revoked: list[tuple[str, bool]]
) -> None:
    run = open_run(pages_application, State.PENDING)
    client = Client()
    client.force_login(canceller)
    url = f"/admin/task-starter/runs/{run.id}/cancel/"

    asked = client.get(url)
    assert (
        asked.status_code == 200 and "It is waiting: it will not start." in asked.content.decode()
    )
    assert TaskRun.objects.get(id=run.id).status == "PENDING"

    done = client.post(url, follow=True)
    page = done.content.decode()
    assert "Cancelled dummy_task." in page
    assert "Cancelled</span>" in page and "by stopper" in page
    again = client.post(url, follow=True)
    assert "already ended (Revoked)" in again.content.decode()


def test_a_run_on_a_silent_handler_is_said_to_maybe_not_stop_before_and_after(
    pages_application: Application, canceller: Any, revoked: list[tuple[str, bool]]
) -> None:
    run = open_run(pages_application, State.STARTED, worker="w1@host")
    worker_heartbeat(hostname="w1@host", at=timezone.now() - timedelta(minutes=2))
    client = Client()
    client.force_login(canceller)
    url = f"/admin/task-starter/runs/{run.id}/cancel/"

    asked = client.get(url).content.decode()
    assert "It is running on w1@host, which has not been heard from for 120 s" in asked
    assert "it may not be able to stop it" in asked

    client.post(url)
    run.refresh_from_db()
    assert run.status == "REVOKED"
    assert run.reason.startswith(
        "Cancelled by stopper while it ran on w1@host, which has not been heard from for 120 s: "
        "it may not be stopped."
    )


def test_a_run_on_a_live_handler_is_said_to_stop(
    pages_application: Application, canceller: Any, revoked: list[tuple[str, bool]]
) -> None:
    run = open_run(pages_application, State.STARTED, worker="w1@host")
    worker_heartbeat(hostname="w1@host")
    assert cancelling.run_cancel_outlook(run=run) == cancelling.WILL_STOP
