from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from lime_task import LimeApplication
from lime_task.registry import load_packages
from limepkg_task_starter.models import Application
from taskstarter.celery import app as celery_app
from tests.support.worker import WorkerProcess, start_worker

pytest_plugins = ["lime_task.testing"]


@pytest.fixture(scope="session", autouse=True)
def collected_static_files() -> None:
    """Pages name their static files through collectstatic's manifest, as in production;
    collect them once if this checkout has not (bin/test always does, before the tests)."""
    if not (Path(settings.STATIC_ROOT) / "staticfiles.json").exists():
        call_command("collectstatic", interactive=False, verbosity=0)


DEMO_TASKS = "solution_demo.tasks.my_tasks"


@pytest.fixture
def demo_application(db: None) -> Application:
    return Application.objects.create(
        name="demo",
        config={"limepkg_task_starter": {"tasks": [f"{DEMO_TASKS}.dummy_task"]}},
    )


@pytest.fixture
def other_application(db: None) -> Application:
    return Application.objects.create(name="other", config={})


@pytest.fixture
def demo_app(demo_application: Application) -> LimeApplication:
    return LimeApplication(demo_application.name, user_name="admin")


@pytest.fixture(scope="session")
def worker_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("worker-logs")


@pytest.fixture(scope="session")
def purged_broker() -> None:
    """Start integration tests on empty queues: nothing left over from an earlier run."""
    celery_app.control.purge()


@pytest.fixture(scope="session")
def shared_worker(
    django_db_setup: None, django_db_blocker: Any, purged_broker: None, worker_logs: Path
) -> Iterator[WorkerProcess]:
    """One real task handler process for the session, on the test database and the broker."""
    with django_db_blocker.unblock():
        process = start_worker(worker_logs)
    yield process
    process.stop()


@pytest.fixture
def worker(transactional_db: None, shared_worker: WorkerProcess) -> WorkerProcess:
    assert shared_worker.alive(), shared_worker.log()
    return shared_worker


@pytest.fixture
def own_worker(
    transactional_db: None, purged_broker: None, worker_logs: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    """Start task handlers of the test's own, for tests that kill or cut them off."""
    started: list[WorkerProcess] = []

    def start(**options: Any) -> WorkerProcess:
        started.append(start_worker(worker_logs, **options))
        return started[-1]

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def live_demo_app(transactional_db: None) -> LimeApplication:
    Application.objects.create(name="demo", config={})
    return LimeApplication("demo", user_name="admin")


# Tests send the reference solution's tasks; workers load it through LIME_PACKAGES.
load_packages(["tests.reference_solution"])
