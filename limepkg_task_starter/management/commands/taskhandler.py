from __future__ import annotations

import argparse
import fcntl
import itertools
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import django
from django.core.management.base import BaseCommand

from lime_task.config import tasks_config
from lime_task.routing import all_queue_names
from limepkg_task_starter import stopping
from taskstarter.celery import app as celery_app

# Held open for the life of the process: the lock on it keeps this handler's node number.
_node_lock: IO[str] | None = None


def claim_node_name(lock_dir: Path | None = None) -> str:
    """``handler<N>@%h`` with the lowest N no running handler on this host holds.

    Celery names every worker ``celery@<host>`` unless told otherwise, so two handlers on one
    host would share a name (one row on the handlers page, and Celery's duplicate-node
    warning). A handler keeps its number across restarts, and the lock goes with the process,
    however it ends.
    """
    global _node_lock
    lock_dir = lock_dir or Path(tempfile.gettempdir()) / f"taskstarter-handlers-{os.getuid()}"
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    for number in itertools.count(1):
        lock = (lock_dir / f"handler{number}.lock").open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _node_lock = lock
        return f"handler{number}@%h"
    raise AssertionError("unreachable")


def worker_argv(argv: list[str], *, node_name: Callable[[], str] = claim_node_name) -> list[str]:
    """Celery worker arguments for ``taskhandler [--queues Q1,Q2] [--beat] [worker options]``.

    Unless given, the node name is ``handler<N>@<host>`` (unique on the host) and the log level
    is INFO, so that each run's routing and outcome lines are logged.
    """
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--queues", "-Q", default=None)
    parser.add_argument("--beat", "-B", action="store_true")
    parser.add_argument("--hostname", "-n", default=None)
    parser.add_argument("--loglevel", "-l", default="INFO")
    own, passthrough = parser.parse_known_args(argv)
    queues = own.queues or ",".join(all_queue_names(tasks_config()))
    return [
        "worker",
        "--queues",
        queues,
        *(["--beat"] if own.beat else []),
        "--hostname",
        own.hostname or node_name(),
        "--loglevel",
        own.loglevel,
        *passthrough,
    ]


class Command(BaseCommand):
    help = (
        "Start a task handler: a Celery worker on every configured queue (or --queues Q1,Q2), "
        "with the scheduler when --beat is given, named handler<N>@<host> (unique on the host) "
        "and logging at INFO unless -n / -l say otherwise. Other Celery worker options pass "
        "through."
    )

    def run_from_argv(self, argv: list[str]) -> None:
        django.setup()
        try:
            celery_app.worker_main(worker_argv(argv[2:]))
        except SystemExit as stopped:
            stopping.exit_without_finalizers(stopped.code)

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - see run_from_argv
        celery_app.worker_main(worker_argv(list(args)))
