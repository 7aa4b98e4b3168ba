"""Pausing a queue from the handlers page and the API: checked, confirmed, stored, audited, and
shown where runs are watched. (Real task handlers honouring it: tests/integration.)"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from lime_task.status import Origin
from limepkg_task_starter.models import Application, AuditEntry, QueuePause, TaskRun
from limepkg_task_starter.services import queues
from limepkg_task_starter.services.maintenance import run_reconcile
from tests.limepkg_task_starter.conftest import DUMMY, make_user

QUEUE = "lime_task_queue_background"
PAGE = "/admin/task-starter/workers/"
API = "/api/v1/queues"


@pytest.fixture
def operator(pages_application: Application) -> Any:
    return make_user("ops", perms=("view", "pause_queue"), applications=(pages_application,))


@pytest.fixture
def ops(operator: Any) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def test_a_pause_is_stored_and_audited(operator: Any) -> None:
    queues.queue_pause(actor=operator, queue=QUEUE)

    pause = QueuePause.objects.get()
    assert (pause.queue, pause.paused_by, pause.paused_by_username) == (QUEUE, operator, "ops")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.detail) == (
        "queue_pause",
        operator,
        queues.PAUSED.format(queue=QUEUE),
    )


def test_a_resume_removes_the_pause_and_is_audited(operator: Any) -> None:
    queues.queue_pause(actor=operator, queue=QUEUE)
    queues.queue_resume(actor=operator, queue=QUEUE)

    assert QueuePause.objects.get().resumed_at is not None
    assert list(AuditEntry.objects.order_by("created_at").values_list("action", flat=True)) == [
        "queue_pause",
        "queue_resume",
    ]


def test_pausing_twice_says_since_when_and_by_whom(operator: Any) -> None:
    queues.queue_pause(actor=operator, queue=QUEUE)
    with pytest.raises(queues.QueueStateError, match=f"Queue {QUEUE} is already paused .* by ops"):
        queues.queue_pause(actor=operator, queue=QUEUE)
    assert AuditEntry.objects.count() == 1


def test_a_queue_paused_again_after_a_resume_says_the_new_pause(
    operator: Any, pages_application: Application
) -> None:
    queues.queue_pause(actor=operator, queue=QUEUE)
    queues.queue_resume(actor=operator, queue=QUEUE)
    other = make_user("bo", perms=("pause_queue",), applications=(pages_application,))
    queues.queue_pause(actor=other, queue=QUEUE)

    pause = QueuePause.objects.get()
    assert (pause.paused_by_username, pause.resumed_at) == ("bo", None)


def _waiting_since(application: Application, hours: float) -> TaskRun:
    return TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=application,
        task_name=DUMMY,
        status="PENDING",
        queue=QUEUE,
        origin=Origin.PAGE,
        created_at=timezone.now() - timedelta(hours=hours),
    )


def test_runs_waiting_in_a_paused_queue_are_not_called_never_started(
    operator: Any, pages_application: Application
) -> None:
    run = _waiting_since(pages_application, hours=2)
    queues.queue_pause(actor=operator, queue=QUEUE)
    assert run_reconcile(worker_lost_after=60, pending_timeout=3600).never_started == 0

    # Resumed: the run gets pending_timeout from the resume, not from when it was sent.
    queues.queue_resume(actor=operator, queue=QUEUE)
    assert run_reconcile(worker_lost_after=60, pending_timeout=3600).never_started == 0
    QueuePause.objects.update(resumed_at=timezone.now() - timedelta(hours=1, seconds=1))
    assert run_reconcile(worker_lost_after=60, pending_timeout=3600).never_started == 1
    run.refresh_from_db()
    assert run.status == "FAILURE"


def test_resuming_a_queue_that_runs_is_refused(operator: Any) -> None:
    with pytest.raises(queues.QueueStateError, match=queues.NOT_PAUSED.format(queue=QUEUE)):
        queues.queue_resume(actor=operator, queue=QUEUE)
    assert not AuditEntry.objects.exists()


def test_an_unknown_queue_is_refused_naming_the_configured_ones(operator: Any) -> None:
    with pytest.raises(queues.UnknownQueueError, match="lime_default_task_queue"):
        queues.queue_pause(actor=operator, queue="nope")
    assert not QueuePause.objects.exists()


def test_without_the_permission_nothing_is_paused(pages_application: Application) -> None:
    viewer = make_user("viewer", perms=("view",), applications=(pages_application,))
    with pytest.raises(queues.QueuePauseRefusedError, match=queues.MAY_NOT_PAUSE):
        queues.queue_pause(actor=viewer, queue=QUEUE)
    assert not QueuePause.objects.exists()


# --- The handlers page --------------------------------------------------------------------


def test_the_page_offers_pause_to_those_who_may(
    ops: Client, pages_application: Application
) -> None:
    page = ops.get(PAGE).content.decode()
    assert f"{PAGE}queues/{QUEUE}/pause/?next=" in page
    assert "Taking runs" in page

    viewer = make_user("viewer", perms=("view",), applications=(pages_application,))
    client = Client()
    client.force_login(viewer)
    assert "/pause/" not in client.get(PAGE).content.decode()


def test_pause_is_confirmed_then_done_and_shown(ops: Client) -> None:
    confirm = ops.get(f"{PAGE}queues/{QUEUE}/pause/?next={PAGE}")
    assert confirm.status_code == 200
    assert "Pause the queue" in confirm.content.decode()
    assert "Runs already started finish" in confirm.content.decode()
    assert not QueuePause.objects.exists()  # asking changes nothing

    done = ops.post(f"{PAGE}queues/{QUEUE}/pause/", {"next": PAGE}, follow=True)

    page = done.content.decode()
    assert QueuePause.objects.filter(queue=QUEUE).exists()
    assert queues.PAUSED.format(queue=QUEUE) in page
    assert f"Queue <code>{QUEUE}</code> paused since" in page
    assert "by ops" in page
    assert f"{PAGE}queues/{QUEUE}/resume/" in page


def test_resume_is_confirmed_then_done(ops: Client, operator: Any) -> None:
    queues.queue_pause(actor=operator, queue=QUEUE)
    confirm = ops.get(f"{PAGE}queues/{QUEUE}/resume/").content.decode()
    assert "Resume the queue" in confirm and "by <strong>ops</strong>" in confirm

    ops.post(f"{PAGE}queues/{QUEUE}/resume/")
    assert QueuePause.objects.get().resumed_at is not None


def test_a_refusal_returns_to_the_page_saying_why(ops: Client) -> None:
    response = ops.post(f"{PAGE}queues/{QUEUE}/resume/", follow=True)
    assert queues.NOT_PAUSED.format(queue=QUEUE) in response.content.decode()


def test_an_unknown_queue_has_no_confirmation_page(ops: Client) -> None:
    assert ops.get(f"{PAGE}queues/nope/pause/").status_code == 404


def test_the_runs_page_shows_the_pause(ops: Client, operator: Any) -> None:
    queues.queue_pause(actor=operator, queue=QUEUE)
    for url in ("/admin/task-starter/demo/runs/", "/admin/task-starter/demo/runs/live/"):
        page = ops.get(url).content.decode()
        assert f"Queue <code>{QUEUE}</code> paused since" in page, url


# --- The API --------------------------------------------------------------------------------


def test_the_api_lists_pauses_and_resumes(ops: Client) -> None:
    assert ops.post(f"{API}/{QUEUE}/pause").status_code == 200
    listed = {row["queue"]: row for row in ops.get(API).json()}
    assert listed[QUEUE]["paused"] is True
    assert listed[QUEUE]["paused_by"] == "ops"
    assert listed["lime_default_task_queue"] == {
        "queue": "lime_default_task_queue",
        "paused": False,
        "paused_at": None,
        "paused_by": None,
    }

    assert (
        ops.post(f"{API}/{QUEUE}/pause")
        .json()["detail"]
        .startswith(f"Queue {QUEUE} is already paused")
    )
    assert ops.post(f"{API}/{QUEUE}/resume").json() == {
        "queue": QUEUE,
        "paused": False,
        "paused_at": None,
        "paused_by": None,
    }
    assert ops.post(f"{API}/{QUEUE}/resume").status_code == 409
    assert ops.post(f"{API}/nope/pause").status_code == 404
    assert AuditEntry.objects.count() == 2


def test_the_api_is_described_in_openapi(ops: Client) -> None:
    paths = ops.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/queues", "/api/v1/queues/{queue}/pause", "/api/v1/queues/{queue}/resume"} <= (
        set(paths)
    )
