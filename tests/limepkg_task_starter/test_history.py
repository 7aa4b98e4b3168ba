from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

import lime_task
from lime_task import LimeApplication, NotFoundError
from lime_task.status import Origin
from limepkg_task_starter.db import save_task_id, track_current_task
from limepkg_task_starter.models import Application, TaskRun

MY_TASK = "tests.reference_solution.tasks.my_task_file.my_task"
pytestmark = pytest.mark.django_db


def history(task_name: str = MY_TASK) -> list[TaskRun]:
    return list(TaskRun.objects.filter(task_name=task_name, in_history=True).order_by("created_at"))


def test_save_task_id_as_the_reference_writes_it(demo_app: LimeApplication) -> None:
    app = demo_app
    start_task = lime_task.send_task(
        "tests.reference_solution.tasks.my_task_file.my_task", app, 55, 66
    )
    save_task_id(
        app=app,
        task_path="tests.reference_solution.tasks.my_task_file.my_task",
        task_id=start_task.id,
        arguments={"number": 55, "numberx": 66},
    )

    [run] = history()
    assert (run.id, run.arguments, run.origin) == (
        start_task.id,
        {"number": 55, "numberx": 66},
        Origin.CODE,
    )


def test_save_task_id_for_a_run_sent_elsewhere_creates_it(demo_application) -> None:
    task_id = str(uuid.uuid4())
    save_task_id("demo", MY_TASK, task_id, {"number": 1, "numberx": 2})
    assert [run.id for run in history()] == [task_id]


def test_save_task_id_cannot_claim_another_applications_run(
    demo_app: LimeApplication, other_application: Application
) -> None:
    sent = lime_task.send_task(MY_TASK, demo_app, 1, 2)
    with pytest.raises(NotFoundError):
        save_task_id("other", MY_TASK, sent.id, {"number": 1, "numberx": 2})
    assert TaskRun.objects.get(id=sent.id).in_history is False


def test_track_current_task_outside_a_worker_records_nothing(demo_app) -> None:
    track_current_task(app=demo_app, task=MY_TASK, arguments={"number": 1})
    assert history() == []


def add_history_runs(application: Application, count: int) -> None:
    start = timezone.now() - timedelta(hours=1)
    TaskRun.objects.bulk_create(
        TaskRun(
            id=str(uuid.uuid4()),
            application=application,
            task_name=MY_TASK,
            in_history=True,
            status="SUCCESS",
            created_at=start + timedelta(seconds=i),
        )
        for i in range(count)
    )


def test_history_keeps_the_latest_ten_by_default(demo_application: Application) -> None:
    add_history_runs(demo_application, 10)
    newest = str(uuid.uuid4())
    save_task_id("demo", MY_TASK, newest, {})

    kept = history()
    assert len(kept) == 10
    assert kept[-1].id == newest
    assert TaskRun.objects.count() == 11  # the oldest left the history, not the database


def test_history_length_follows_the_application_config(demo_application: Application) -> None:
    demo_application.config = {"limepkg_task_starter": {"task_history": 20}}
    demo_application.save()
    add_history_runs(demo_application, 25)
    save_task_id("demo", MY_TASK, str(uuid.uuid4()), {})
    assert len(history()) == 20


@pytest.mark.parametrize("existing", [10, 2000])
def test_recording_costs_the_same_queries_however_long_the_history(
    demo_application: Application, existing: int, django_assert_num_queries
) -> None:
    add_history_runs(demo_application, existing)
    save_task_id("demo", MY_TASK, str(uuid.uuid4()), {})  # prune down to N first
    # claim the run (none yet), check the id is free, insert, find the stale, unlist; the
    # application's config comes from the cache the first call filled
    with django_assert_num_queries(5):
        save_task_id("demo", MY_TASK, str(uuid.uuid4()), {})
