"""Plain Celery, configured as the findings' baselines, for comparison in the same run.

``BASELINE_BACKEND=redis``: Redis broker and Redis result backend.
``BASELINE_BACKEND=django-db``: django-celery-results on the project database, with
``task_track_started`` and ``result_extended``.
"""

from __future__ import annotations

import os
import sys

from celery import Celery

BASELINE_QUEUE = "bench_baseline"


def worker_argv(concurrency: int, *options: str) -> list[str]:
    """The command of a plain Celery worker on the baseline queue."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.baseline",
        "worker",
        "--concurrency",
        str(concurrency),
        "--queues",
        BASELINE_QUEUE,
        "--without-mingle",
        "--without-gossip",
        *options,
    ]


backend = os.environ.get("BASELINE_BACKEND", "redis")

if backend == "django-db":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskstarter.settings")
    django.setup()

app = Celery("baseline", broker=os.environ["BROKER_URL"])
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=BASELINE_QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if backend == "django-db":
    app.conf.update(result_backend="django-db", task_track_started=True, result_extended=True)
else:
    app.conf.update(result_backend=os.environ.get("BASELINE_RESULT_URL", os.environ["BROKER_URL"]))


@app.task(name="baseline.noop")
def noop(number: int = 0) -> int:
    return number
