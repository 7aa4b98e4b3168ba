"""What the benchmark scripts share: where they keep their data, apart from the test suite's
(the ``taskstarter`` and ``test_taskstarter`` databases, Redis db 0) so ``bin/test`` can run
them in the same CI job, and how they wait and end.

``BENCH_DATABASE`` (default ``taskstarter_bench``) and ``BENCH_REDIS_URL`` (default Redis db 2)
move them, for two benchmark runs side by side on one machine.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
POSTGRES_SERVER = "postgres://postgres@127.0.0.1:5432"
DATABASE = os.environ.get("BENCH_DATABASE", "taskstarter_bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")


def create_database() -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


def wait(
    predicate: Callable[[], object],
    timeout: float,
    interval: float = 0.05,
    what: str = "benchmark step",
) -> None:
    """Until ``predicate()``; a step that never gets there fails the benchmark."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} timed out after {timeout:g} s")
        time.sleep(interval)


def end_on_sigterm() -> None:
    """A timeout (bin/test's, or a user's kill) ends the script through its ``finally`` blocks,
    which stop the processes it started in sessions (or hosts) of their own. Only the first
    SIGTERM counts: ``timeout`` sends a second one to its process group, which would cut that
    clean-up short."""

    def end(*_: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(128 + signal.SIGTERM)

    signal.signal(signal.SIGTERM, end)


def set_up_django(**environment: str) -> None:
    """Django on the benchmark database and Redis db, with the benchmark solution's tasks."""
    os.environ.update(
        DJANGO_SETTINGS_MODULE="taskstarter.settings",
        DATABASE_URL=f"{POSTGRES_SERVER}/{DATABASE}",
        BROKER_URL=REDIS,
        LIME_PACKAGES="bench.solution",
        LOG_LEVEL="WARNING",
        **environment,
    )
    end_on_sigterm()
    create_database()

    import django

    django.setup()


def collect_static(*, reuse: bool) -> None:
    """The pages name their static files through collectstatic's manifest, as deployed.
    ``reuse`` keeps a manifest already there (bin/test collects just before the quick runs):
    collecting takes a minute on a busy machine."""
    from django.conf import settings
    from django.core.management import call_command

    if not (reuse and (Path(settings.STATIC_ROOT) / "staticfiles.json").exists()):
        call_command("collectstatic", interactive=False, verbosity=0)
