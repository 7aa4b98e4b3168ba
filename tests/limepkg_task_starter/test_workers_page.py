"""The task handlers and queues page: heartbeats, runs in progress, the broker's backlog."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from kombu import Connection, Exchange, Producer, Queue

from limepkg_task_starter import monitoring, selectors
from limepkg_task_starter.models import Application, TaskRun, WorkerHeartbeat
from limepkg_task_starter.services.maintenance import worker_heartbeat
from limepkg_task_starter.tracking import handler_pool_and_queues
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


QUEUES = ["lime_default_task_queue", "lime_task_queue_asap"]


def viewer(application: Application, name: str = "ops") -> Client:
    client = Client()
    client.force_login(make_user(name, perms=("view",), applications=(application,)))
    return client


def by_name(response: Any, key: str) -> dict[str, Any]:
    return {
        getattr(row, "hostname", None) or row.name: row
        for row in response.context[key]  # handlers have hostnames, queues names
    }


def test_consumers_are_the_live_handlers_that_say_they_consume_the_queue(
    monkeypatch: pytest.MonkeyPatch, pages_application: Application
) -> None:
    monkeypatch.setattr(monitoring, "worker_replies", lambda expected: {})
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="a@h", last_seen=now, queues=QUEUES)
    WorkerHeartbeat.objects.create(hostname="b@h", last_seen=now, queues=QUEUES[:1])
    WorkerHeartbeat.objects.create(
        hostname="gone@h", last_seen=now - timedelta(hours=1), queues=QUEUES
    )

    queues = by_name(viewer(pages_application).get(PAGE), "queues")

    assert queues["lime_default_task_queue"].consumers == 2  # the silent one is not counted
    assert queues["lime_task_queue_asap"].consumers == 1
    assert queues["lime_task_queue_background"].consumers == 0  # truly none: all have said


def test_consumers_are_unknown_while_a_live_handler_has_not_said_its_queues(
    monkeypatch: pytest.MonkeyPatch, pages_application: Application
) -> None:
    monkeypatch.setattr(monitoring, "worker_replies", lambda expected: {})
    WorkerHeartbeat.objects.create(hostname="a@h", last_seen=timezone.now(), queues=QUEUES)
    WorkerHeartbeat.objects.create(hostname="old@h", last_seen=timezone.now())

    response = viewer(pages_application).get(PAGE)

    assert all(queue.consumers is None for queue in response.context["queues"])
    assert "unknown: a live handler has not said" in response.content.decode()


def test_concurrency_and_queues_come_from_the_heartbeat_when_the_handler_is_not_asked(
    monkeypatch: pytest.MonkeyPatch, pages_application: Application
) -> None:
    monkeypatch.setattr(monitoring, "worker_replies", lambda expected: {})
    worker_heartbeat(hostname="a@h", concurrency=2, queues=QUEUES)
    worker_heartbeat(hostname="a@h")  # a later beat that says nothing new keeps what was said

    handler = by_name(viewer(pages_application).get(PAGE), "handlers")["a@h"]

    assert (handler.concurrency, handler.queues, handler.answered) == (2, QUEUES, False)


def test_what_a_handler_answers_now_wins_over_its_heartbeat(db: None) -> None:
    beat = selectors.WorkerView(
        hostname="a@h",
        last_seen=timezone.now(),
        alive=True,
        running=0,
        queues=QUEUES,
        concurrency=2,
    )
    [answered] = selectors.workers_with_replies(
        [beat], {"a@h": {"queues": QUEUES[:1], "concurrency": 4}}
    )
    assert (answered.queues, answered.concurrency, answered.answered) == (QUEUES[:1], 4, True)


def test_the_oldest_waiting_run_is_of_the_viewers_applications_only(
    pages_application: Application, other_pages_application: Application
) -> None:
    now = timezone.now()
    for application, minutes in ((pages_application, 2), (other_pages_application, 30)):
        TaskRun.objects.create(
            id=str(uuid.uuid4()),
            application=application,
            task_name=DUMMY,
            status="PENDING",
            queue="lime_task_queue_asap",
            created_at=now - timedelta(minutes=minutes),
        )

    mine = by_name(viewer(pages_application).get(PAGE), "queues")
    theirs = by_name(viewer(other_pages_application, "them").get(PAGE), "queues")

    assert mine["lime_task_queue_asap"].oldest_waiting == now - timedelta(minutes=2)
    assert theirs["lime_task_queue_asap"].oldest_waiting == now - timedelta(minutes=30)


def test_the_page_keeps_the_applications_tabs_and_breadcrumb(
    pages_application: Application, other_pages_application: Application
) -> None:
    client = viewer(pages_application)

    html = client.get(f"{PAGE}?application=demo").content.decode()

    assert '<a href="/admin/task-starter/demo/">demo</a> › Task handlers and queues' in html
    assert '<a href="/admin/task-starter/demo/">Tasks</a>' in html
    assert '<a href="/admin/task-starter/demo/runs/">Runs</a>' in html
    assert '<strong aria-current="page">Task handlers and queues</strong>' in html
    assert client.get(PAGE).context["application"] == pages_application  # the viewer's first
    assert client.get(f"{PAGE}?application=other").status_code == 404  # not theirs


def test_the_other_tabs_lead_back_to_the_handlers_page_of_their_application(
    pages_application: Application,
) -> None:
    html = viewer(pages_application).get("/admin/task-starter/demo/runs/").content.decode()
    assert f'<a href="{PAGE}?application=demo">Task handlers and queues</a>' in html


def test_polled_it_answers_only_its_live_part(pages_application: Application) -> None:
    response = viewer(pages_application).get(f"{PAGE}?application=demo", HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="workers-live"')
    assert 'hx-trigger="every 5s"' in html and "breadcrumbs" not in html


def test_live_handlers_keep_their_places_between_heartbeats(pages_application: Application) -> None:
    now = timezone.now()
    WorkerHeartbeat.objects.create(hostname="b@h", last_seen=now)
    WorkerHeartbeat.objects.create(hostname="a@h", last_seen=now - timedelta(seconds=3))
    WorkerHeartbeat.objects.create(hostname="old@h", last_seen=now - timedelta(hours=2))
    WorkerHeartbeat.objects.create(hostname="older@h", last_seen=now - timedelta(hours=3))

    rows = selectors.workers_overview(user=make_user("ops"), worker_lost_after=60)

    assert [row.hostname for row in rows] == ["a@h", "b@h", "old@h", "older@h"]


def test_the_application_switch_stays_on_the_handlers_page(
    pages_application: Application, other_pages_application: Application
) -> None:
    client = Client()
    client.force_login(make_user("root", superuser=True))

    html = client.get(f"{PAGE}?application=demo").content.decode()

    assert f'<a href="{PAGE}?application=other">other</a>' in html


def test_an_autoscaling_handler_says_its_maximum_and_its_current_queues() -> None:
    consumer = SimpleNamespace(
        controller=SimpleNamespace(concurrency=3, max_concurrency=8),
        # what a control command's add_consumer leaves: the queues selected now, by name
        app=SimpleNamespace(
            amqp=SimpleNamespace(queues=SimpleNamespace(consume_from=QUEUES[::-1]))
        ),
    )

    assert handler_pool_and_queues(consumer) == (8, sorted(QUEUES))
    assert handler_pool_and_queues(None) == (None, None)
