"""A broker that accepts connections and never answers: starts and pages still answer within
seconds, served as in production (gunicorn), on the Redis and the AMQP transport."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from limepkg_task_starter.models import Application, TaskRun
from limepkg_task_starter.services.tokens import api_token_create
from tests.support.server import start_production_server

DUMMY = "solution_demo.tasks.my_tasks.dummy_task"
ANSWER_WITHIN_SECONDS = 10


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts every connection and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:  # closed at the end of the test
                return

    threading.Thread(target=accept, daemon=True).start()
    yield int(listener.getsockname()[1])
    listener.close()
    for connection in held:
        connection.close()


def _timed_request(request: urllib.request.Request) -> tuple[int, bytes, float]:
    began = time.monotonic()
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read(), time.monotonic() - began


@pytest.mark.parametrize(
    "broker", ["redis://127.0.0.1:{port}/0", "amqp://guest:guest@127.0.0.1:{port}//"]
)
def test_starts_and_the_handlers_page_answer_when_the_broker_is_silent(
    transactional_db: None, tmp_path: Path, silent_port: int, broker: str
) -> None:
    Application.objects.create(name="demo", config={"limepkg_task_starter": {"tasks": [DUMMY]}})
    admin = User.objects.create_superuser("admin")
    _, key = api_token_create(user=admin, name="probe")
    browser = Client()
    browser.force_login(admin)
    session = browser.cookies["sessionid"].value
    server = start_production_server(tmp_path, env={"BROKER_URL": broker.format(port=silent_port)})
    try:
        status, _, start_took = _timed_request(
            urllib.request.Request(
                f"{server.url}/api/v1/applications/demo/tasks/{DUMMY}/runs",
                data=b'{"arguments": {}}',
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                method="POST",
            )
        )
        page_status, page, page_took = _timed_request(
            urllib.request.Request(
                f"{server.url}/admin/task-starter/workers/",
                headers={"Cookie": f"sessionid={session}"},
            )
        )
    finally:
        server.stop()

    assert status == 202 and start_took < ANSWER_WITHIN_SECONDS, (status, start_took)
    run = TaskRun.objects.get()
    assert (run.status, run.sent) == ("FAILURE", False)
    assert run.reason.startswith("Not sent: the broker is unavailable")
    assert page_status == 200 and page_took < ANSWER_WITHIN_SECONDS, (page_status, page_took)
    assert b"Task handlers" in page
    assert b"The broker did not answer" in page  # each queue's depth says why it is missing
    print(f"silent {broker.split(':')[0]} broker: start {start_took:.1f} s, page {page_took:.1f} s")
