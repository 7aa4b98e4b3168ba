"""Task starter page time and SQL queries with 1,000 exposed tasks and 1,000,000 runs.

    .venv/bin/python bench/pages.py [--runs N] [--requests N]

Server time is measured in-process through Django's test client (the whole request: middleware,
views, templates, queries) against PostgreSQL, in the ``taskstarter_bench`` database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
os.environ.update(
    DJANGO_SETTINGS_MODULE="taskstarter.settings",
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/taskstarter_bench",
    LIME_PACKAGES="bench.solution",
    LOG_LEVEL="WARNING",
    DJANGO_ALLOWED_HOSTS="testserver",
)
sys.path.insert(0, str(PROJECT_DIR))

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.run import create_database  # noqa: E402
from bench.solution.tasks.many import NAMES  # noqa: E402
from limepkg_task_starter.models import Application  # noqa: E402

HISTORY = 10


def fill(runs: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE limepkg_task_starter_taskrun, limepkg_task_starter_auditentry")
        cursor.execute(
            """
            INSERT INTO limepkg_task_starter_taskrun
                (id, application_name, task_name, args, kwargs, arguments, status, result,
                 error_type, traceback, reason, sent, skipped, origin, in_history, run_as, language,
                 queue, route_type, worker, progress_message, created_at, started_at,
                 finished_at)
            SELECT 'page-' || i, 'pages', (%s::text[])[1 + (i %% %s)],
                   '[]', '{}', '{"value": 1}', 'SUCCESS', '"done"', '', '', '', true, false, 'page', i <= %s, 'admin', 'en',
                   'lime_default_task_queue', 'default_queue', 'w', '',
                   now() - make_interval(secs => i), now() - make_interval(secs => i),
                   now() - make_interval(secs => i) + interval '20 ms'
            FROM generate_series(1, %s) AS i
            """,
            [NAMES, len(NAMES), HISTORY * len(NAMES), runs],
        )
        cursor.execute("ANALYZE limepkg_task_starter_taskrun")


def measure(client: Client, url: str, count: int) -> tuple[float, float, int]:
    client.get(url)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95, len(queries.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    options = parser.parse_args()
    create_database()
    call_command("migrate", verbosity=0)
    Application.objects.update_or_create(
        name="pages", defaults={"config": {"limepkg_task_starter": {"tasks": NAMES}}}
    )
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    print(f"Filling {options.runs:,} runs over {len(NAMES):,} exposed tasks...", flush=True)
    fill(options.runs)
    pages = {
        "task list (first page of 100)": "/admin/task-starter/pages/",
        "task list, search": "/admin/task-starter/pages/?q=0999",
        "task page (history of 10)": f"/admin/task-starter/pages/tasks/{NAMES[7]}/",
    }
    print("| page | p50 | p95 | SQL queries |")
    print("| --- | --- | --- | --- |")
    for name, url in pages.items():
        p50, p95, queries = measure(client, url, options.requests)
        print(f"| {name} | {p50 * 1e3:.1f} ms | {p95 * 1e3:.1f} ms | {queries} |", flush=True)


if __name__ == "__main__":
    main()
