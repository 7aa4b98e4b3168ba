from __future__ import annotations

import argparse
from typing import Any

import django
from django.core.management.base import BaseCommand

from lime_task.config import tasks_config
from lime_task.routing import all_queue_names
from limepkg_task_starter import stopping
from taskstarter.celery import app as celery_app


def worker_argv(argv: list[str]) -> list[str]:
    """Celery worker arguments for ``taskhandler [--queues Q1,Q2] [--beat] [worker options]``."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--queues", "-Q", default=None)
    parser.add_argument("--beat", "-B", action="store_true")
    own, passthrough = parser.parse_known_args(argv)
    queues = own.queues or ",".join(all_queue_names(tasks_config()))
    return ["worker", "--queues", queues, *(["--beat"] if own.beat else []), *passthrough]


class Command(BaseCommand):
    help = (
        "Start a task handler: a Celery worker on every configured queue (or --queues Q1,Q2), "
        "with the scheduler when --beat is given. Other Celery worker options pass through."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        django.setup()
        try:
            celery_app.worker_main(worker_argv(argv[2:]))
        except SystemExit as stopped:
            stopping.exit_without_finalizers(stopped.code)

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - see run_from_argv
        celery_app.worker_main(worker_argv(list(args)))
