from __future__ import annotations

import pytest

from lime_task import (
    InvalidArgumentsError,
    LimeApplication,
    NotFoundError,
    UnknownTaskError,
    send_task,
)
from lime_task.dispatch import MAX_ARGUMENTS_BYTES
from lime_task.status import Origin, State
from limepkg_task_starter.models import TaskRun

MY_TASK = "tests.reference_solution.tasks.my_task_file.my_task"
pytestmark = pytest.mark.django_db


def test_send_records_a_pending_run(demo_app: LimeApplication) -> None:
    status = send_task(MY_TASK, demo_app, 55, 66)

    run = TaskRun.objects.get(id=status.id)
    assert status.status == State.PENDING
    assert (run.application.name, run.task_name, run.args) == ("demo", MY_TASK, [55, 66])
    assert (run.status, run.origin, run.run_as) == (State.PENDING, Origin.CODE, "admin")
    assert (run.queue, run.route_type) == ("lime_default_task_queue", "default_queue")
    assert run.in_history is False


def test_message_goes_out_only_after_commit(
    demo_app: LimeApplication, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        send_task(MY_TASK, demo_app, 1, 2)
    assert len(callbacks) == 1


def test_application_may_be_given_by_name(demo_application) -> None:
    status = send_task(MY_TASK, "demo", 1, 2)
    assert TaskRun.objects.get(id=status.id).application == demo_application


def test_routing_keywords_become_headers_not_arguments(demo_app: LimeApplication) -> None:
    status = send_task(MY_TASK, demo_app, 1, numberx=2, **{"__qos_category": "asap"})
    run = TaskRun.objects.get(id=status.id)
    assert run.kwargs == {"numberx": 2}
    assert (run.queue, run.route_type) == ("lime_task_queue_asap", "header_qos")


@pytest.mark.parametrize(
    "name", ["no.such.task", "celery.backend_cleanup", "solution_demo.tasks.my_tasks"]
)
def test_unknown_or_internal_task_is_refused_at_the_call(
    demo_app: LimeApplication, name: str
) -> None:
    with pytest.raises(UnknownTaskError, match="not a registered @task"):
        send_task(name, demo_app)
    assert not TaskRun.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((object(), 1), "not JSON-serialisable"),
        (("x" * MAX_ARGUMENTS_BYTES, 1), "over the limit"),
        ((1,), "missing a required argument: 'numberx'"),
        ((1, 2, 3), "too many positional arguments"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_recorded(
    demo_app: LimeApplication, args: tuple[object, ...], message: str
) -> None:
    with pytest.raises(InvalidArgumentsError, match=message):
        send_task(MY_TASK, demo_app, *args)
    assert not TaskRun.objects.exists()


def test_unknown_application_is_refused(db: None) -> None:
    with pytest.raises(NotFoundError, match="No application named 'nowhere'"):
        send_task(MY_TASK, LimeApplication("nowhere"), 1, 2)
    assert not TaskRun.objects.exists()


def test_a_send_is_one_database_write(demo_app: LimeApplication, django_assert_num_queries) -> None:
    send_task(MY_TASK, demo_app, 1, 2)  # the application's config is read once, then cached
    with django_assert_num_queries(1) as captured:
        send_task(MY_TASK, demo_app, 3, 4)
    assert captured.captured_queries[0]["sql"].startswith("INSERT INTO")


def test_a_changed_application_is_read_again(demo_application, demo_app: LimeApplication) -> None:
    send_task(MY_TASK, demo_app, 1, 2)
    demo_application.delete()
    with pytest.raises(NotFoundError):
        send_task(MY_TASK, demo_app, 3, 4)
