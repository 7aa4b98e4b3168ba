"""The task handlers and queues page: heartbeats, runs in progress, the broker's backlog."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from kombu import Connection, Exchange, Producer, Queue

from limepkg_task_starter import monitoring
from limepkg_task_starter.models import Application, TaskRun, WorkerHeartbeat
from taskstarter.celery import app as celery_app
from tests.limepkg_task_starter.conftest import DUMMY, make_user

PAGE = "/admin/task-starter/workers/"


def test_handlers_with_their_state_and_runs_in_progress_and_the_queues(
    pages_application: Application, other_pages_application: Application
) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="alive@a", last_seen=now)
    WorkerHeartbeat.objects.create(hostname="silent@b", last_seen=now - timedelta(hours=1))
    for application in (pages_application, pages_application, other_pages_application):
        TaskRun.objects.create(
            id=str(uuid.uuid4()),
            application=application,
            task_name=DUMMY,
            status="STARTED",
            worker="alive@a",
            queue="lime_default_task_queue",
            created_at=now,
        )
    TaskRun.objects.create(
        id=str(uuid.uuid4()),
        application=pages_application,
        task_name=DUMMY,
        status="PENDING",
        queue="lime_default_task_queue",
        created_at=now - timedelta(minutes=3),
    )
    client = Client()
    client.force_login(make_user("ops", perms=("view",), applications=(pages_application,)))

    response = client.get(PAGE)
    assert response.status_code == 200
    handlers = {handler.hostname: handler for handler in response.context["handlers"]}
    assert handlers["alive@a"].alive and not handlers["silent@b"].alive
    assert handlers["alive@a"].running == 2  # the other application's run is not this viewer's
    queues = {queue.name: queue for queue in response.context["queues"]}
    assert set(queues) >= {"lime_default_task_queue", "lime_task_queue_asap"}
    assert queues["lime_default_task_queue"].oldest_waiting == now - timedelta(minutes=3)
    assert queues["lime_task_queue_asap"].oldest_waiting is None
    assert all(queue.depth is not None or queue.error for queue in queues.values())
    assert "Silent" in response.content.decode()


def test_only_for_those_who_may_see_runs(pages_application: Application) -> None:
    client = Client()
    client.force_login(make_user("starter_only", perms=("start",)))
    assert client.get(PAGE).status_code == 403


@pytest.mark.skipif(
    celery_app.conf.broker_url.startswith("embedded"), reason="reads a server broker's queue"
)
def test_the_depth_is_what_the_broker_holds() -> None:
    name = f"depth-{uuid.uuid4().hex[:8]}"
    queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
    with Connection(celery_app.conf.broker_url) as connection:
        bound = queue(connection.default_channel)
        bound.declare()
        try:
            producer = Producer(connection.default_channel)
            for number in range(3):
                producer.publish({"n": number}, exchange=queue.exchange, routing_key=name)
            assert monitoring.queue_depths([name])[name] == (3, 0)
        finally:
            bound.delete()


def test_a_broker_that_does_not_answer_is_said_in_the_page(
    monkeypatch: pytest.MonkeyPatch, pages_application: Application
) -> None:
    monkeypatch.setattr(celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")
    depths = monitoring.queue_depths(["lime_default_task_queue"])
    assert depths["lime_default_task_queue"].startswith("The broker did not answer")


def test_an_application_cannot_take_a_pages_name(db: None) -> None:
    from limepkg_task_starter.services.applications import (
        InvalidApplicationError,
        applications_import,
    )

    with pytest.raises(InvalidApplicationError, match="name of a Task starter page"):
        applications_import(data={"workers": {"config": {}}})
