"""A real scheduler (celery beat with the Task starter's scheduler) and a real task handler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from lime_task import LimeApplication
from lime_task.status import Origin
from limepkg_task_starter.models import Application, SchedulerLock, TaskRun
from taskstarter.celery import app as celery_app
from tests.support.worker import PROJECT_DIR, WorkerProcess, database_url, wait_for

pytestmark = pytest.mark.integration
TASKS = "tests.reference_solution.tasks.my_task_file"


class Beat:
    def __init__(self, log_dir: Path, name: str) -> None:
        self.log_path = log_dir / f"beat-{name}.log"
        env = {
            **os.environ,
            "DATABASE_URL": database_url(connection.settings_dict),
            "BROKER_URL": settings.CELERY_BROKER_URL,
            "LIME_PACKAGES": "tests.reference_solution",
            "LIME_SCHEDULER_LEASE_SECONDS": "3",
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "taskstarter",
                    "beat",
                    "--loglevel",
                    "INFO",
                    "--max-interval",
                    "1",
                    "--pidfile=",
                ],
                cwd=PROJECT_DIR,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def holder(self) -> str:
        return f":{self.process.pid}"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=30)


@pytest.fixture
def beats(worker_logs: Path) -> Iterator[list[Beat]]:
    started: list[Beat] = []
    yield started
    for beat in started:
        beat.stop()


def every(seconds: int, name: str, task: str, args: list, app: str = "demo") -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    return PeriodicTask.objects.create(
        name=name,
        task=task,
        interval=interval,
        args=json.dumps(args),
        headers=json.dumps({"lime_application": app, "lime_user": "integration-user"}),
    )


def scheduled_runs() -> list[TaskRun]:
    return list(TaskRun.objects.filter(origin=Origin.SCHEDULE).order_by("started_at"))


def test_beat_dispatches_to_the_worker_and_the_history_shows_it(
    worker: WorkerProcess, live_demo_app: LimeApplication, beats: list[Beat], worker_logs: Path
) -> None:
    every(1, "every second", f"{TASKS}.dummy_task", [2, 3])
    beats.append(Beat(worker_logs, "solo"))

    def finished() -> list[TaskRun]:
        return [run for run in scheduled_runs() if run.finished_at is not None]

    runs = wait_for(lambda: len(r := finished()) >= 3 and r, 30, what="scheduled runs")
    assert {(r.status, r.result, r.run_as) for r in runs[:3]} == {
        ("SUCCESS", 30, "integration-user")
    }
    assert all(r.in_history and r.arguments == {"number": 2, "numberx": 3} for r in runs[:3])


def test_two_schedulers_dispatch_each_run_once_and_the_standby_takes_over(
    worker: WorkerProcess, live_demo_app: LimeApplication, beats: list[Beat], worker_logs: Path
) -> None:
    every(2, "every two seconds", f"{TASKS}.my_task", [1, 1])
    beats.extend([Beat(worker_logs, "a"), Beat(worker_logs, "b")])
    lock = wait_for(lambda: SchedulerLock.objects.first(), 30, what="a scheduler to lead")
    leader = next(b for b in beats if lock.holder.endswith(b.holder()))
    wait_for(lambda: len(scheduled_runs()) >= 4, 30, what="runs from the leader")

    leader.stop(signal.SIGKILL)
    before = len(scheduled_runs())
    wait_for(lambda: len(scheduled_runs()) >= before + 3, 40, what="runs from the standby")

    starts = [r.created_at for r in scheduled_runs()]
    gaps = [(b - a).total_seconds() for a, b in pairwise(starts)]
    assert min(gaps) > 1.0, f"two dispatches of one run: {gaps}"
    new_lock = SchedulerLock.objects.get()
    assert not new_lock.holder.endswith(leader.holder())


def test_a_task_disabled_in_the_config_runs_a_stand_in_and_shows_skipped(
    worker: WorkerProcess, transactional_db: None, tmp_path: Path
) -> None:
    marker = tmp_path / "ran.txt"
    Application.objects.create(
        name="demo", config={"scheduled_tasks": {f"{TASKS}.touch": {"enabled": False}}}
    )
    sent = celery_app.send_task(
        f"{TASKS}.touch",
        args=[str(marker)],
        headers={"lime_application": "demo", "periodic_task_name": "demo: touch"},
    )

    run = wait_for(
        lambda: TaskRun.objects.filter(id=sent.id, finished_at__isnull=False).first(),
        20,
        what="the skipped run",
    )
    assert (run.status, run.skipped, run.origin) == ("REVOKED", True, Origin.SCHEDULE)
    assert run.reason == "Skipped: the task is disabled in the application configuration."
    assert not marker.exists()
    assert "is disabled for application demo; skipped" in worker.log()
