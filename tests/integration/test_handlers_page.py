"""The task handlers and queues page with a real task handler: what it says of itself reaches
the page on every broker (its heartbeat), and on a server broker it also answers when asked."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from lime_task.config import tasks_config
from lime_task.routing import all_queue_names
from limepkg_task_starter import monitoring
from limepkg_task_starter.models import Application
from tests.limepkg_task_starter.conftest import make_user
from tests.support.worker import WorkerProcess

pytestmark = pytest.mark.integration
PAGE = "/admin/task-starter/workers/"


def test_a_live_handler_is_counted_as_a_consumer_of_its_queues_with_its_concurrency(
    own_worker: Callable[..., WorkerProcess],
) -> None:
    handler = own_worker(concurrency=2)  # back once its first heartbeat is written
    client = Client()
    client.force_login(
        make_user("ops", perms=("view",), applications=(Application.objects.create(name="ops"),))
    )

    response = client.get(PAGE)

    names = all_queue_names(tasks_config())
    [row] = [row for row in response.context["handlers"] if row.hostname == handler.hostname]
    assert (row.concurrency, row.queues) == (2, sorted(names))
    assert row.answered is monitoring.can_broadcast()  # asked where the broker can broadcast
    live = [other for other in response.context["handlers"] if other.alive]
    for queue in response.context["queues"]:
        assert queue.consumers == sum(1 for other in live if queue.name in (other.queues or ()))
        assert queue.consumers >= 1, queue
