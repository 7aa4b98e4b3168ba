from __future__ import annotations

import threading
import time

import pytest
from django.db import connection
from django.utils import timezone

import lime_task
from lime_task import (
    LimeApplication,
    NotFoundError,
    TaskStatus,
    get_status,
    send_task,
    wait_for_status,
)
from lime_task.status import State
from limepkg_task_starter.models import TaskRun
from limepkg_task_starter.services.worker import run_mark_finished

MY_TASK = "tests.reference_solution.tasks.my_task_file.my_task"
pytestmark = pytest.mark.django_db


def test_the_sending_application_reads_the_status(demo_app: LimeApplication) -> None:
    sent = send_task(MY_TASK, demo_app, 1, 2)
    assert get_status(sent.id, "demo") == TaskStatus(sent.id, "PENDING", None)


def test_another_application_cannot_read_it(demo_app: LimeApplication, other_application) -> None:
    sent = send_task(MY_TASK, demo_app, 1, 2)
    with pytest.raises(NotFoundError):
        lime_task.get_status(sent.id, "other")


def test_an_unknown_id_is_not_found(demo_application) -> None:
    with pytest.raises(NotFoundError):
        get_status("00000000-0000-0000-0000-000000000000", "demo")


def test_completed_status_carries_the_result(demo_app: LimeApplication) -> None:
    sent = send_task(MY_TASK, demo_app, 1, 2)
    TaskRun.objects.filter(id=sent.id).update(status="SUCCESS", result="added 1 and 2")

    status = get_status(sent.id, "demo")

    assert status.is_completed()
    assert status.to_json() == {"id": sent.id, "status": "SUCCESS", "result": "added 1 and 2"}


@pytest.mark.parametrize(
    ("state", "completed"),
    [
        ("PENDING", False),
        ("STARTED", False),
        ("RETRY", False),
        ("SUCCESS", True),
        ("FAILURE", True),
        ("REVOKED", True),
    ],
)
def test_is_completed(state: str, completed: bool) -> None:
    assert TaskStatus("id", state).is_completed() is completed


def test_wait_for_status_returns_once_the_run_has_finished(transactional_db, demo_app) -> None:
    sent = send_task(MY_TASK, demo_app, 1, 2)

    def finish_soon() -> None:
        time.sleep(0.2)
        run_mark_finished(task_id=sent.id, status=State.SUCCESS, at=timezone.now(), result=3)
        connection.close()

    worker = threading.Thread(target=finish_soon)
    worker.start()
    try:
        status = wait_for_status(sent.id, "demo", timeout=10)
    finally:
        worker.join(timeout=10)
    assert status == TaskStatus(sent.id, "SUCCESS", 3)


def test_wait_for_status_gives_the_open_status_at_the_timeout(demo_app) -> None:
    sent = send_task(MY_TASK, demo_app, 1, 2)
    started = time.monotonic()
    assert wait_for_status(sent.id, "demo", timeout=0.3).status == "PENDING"
    assert time.monotonic() - started >= 0.3


def test_wait_for_status_keeps_applications_apart(demo_app, other_application) -> None:
    sent = send_task(MY_TASK, demo_app, 1, 2)
    with pytest.raises(NotFoundError):
        wait_for_status(sent.id, "other", timeout=1)
