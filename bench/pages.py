"""Task starter page time and SQL queries with 1,000 exposed tasks and 1,000,000 runs: the task
list, a task page, and the runs page with its filters and searches (targets at a million runs:
argument search p95 ≤ 50 ms, text search p95 ≤ 100 ms).

    .venv/bin/python bench/pages.py [--runs N] [--requests N] [--reuse] [--explain]
    .venv/bin/python bench/pages.py --quick    # 5,000 runs, 3 requests per page (CI)

``--reuse`` keeps the runs a previous fill of the same size left (the fill takes minutes at a
million); ``--explain`` prints the plans of the runs page's searches.

Server time is measured in-process through Django's test client (the whole request: middleware,
views, templates, queries) against PostgreSQL, in the benchmarks' own database (bench/environment.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote_plus

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.environment import collect_static, set_up_django

set_up_django(DJANGO_ALLOWED_HOSTS="testserver")

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.history import insert_runs  # noqa: E402
from bench.solution.tasks.many import NAMES  # noqa: E402
from limepkg_task_starter.models import Application, TaskRun  # noqa: E402
from limepkg_task_starter.selectors import (  # noqa: E402
    RUNS_PER_PAGE,
    RunFilters,
    runs_filtered,
    with_retry,
)
from limepkg_task_starter.services.stats import stats_rollup  # noqa: E402

HISTORY = 10
RUNS = "/admin/task-starter/pages/runs/"
# The runs page's searches: by argument (one run of a million, and 200 by a nested key, through
# the GIN index) and by text, for words no run holds, so it reads all the runs it may (10,000).
SEARCHES = {
    "runs, argument search, one run (value=123457)": f"{RUNS}?q=value%3D123457",
    "runs, argument search, nested (customer.id=42)": f"{RUNS}?q=customer.id%3D42",
    "runs, text search, no match (reads 10,000 runs)": f"{RUNS}?q=bad+row+99999",
}


def fill(runs: int, *, reuse: bool = False) -> None:
    """``runs`` runs of the ``pages`` application, one a second back from now; ``reuse`` keeps
    the ones a previous fill left (their times are then as old as that fill)."""
    if reuse and TaskRun.objects.filter(application_id="pages").count() == runs:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE limepkg_task_starter_taskrun, limepkg_task_starter_auditentry CASCADE"
        )
    insert_runs(
        {
            "id": "'page-' || i",
            "application_name": "'pages'",
            "task_name": "(%s::text[])[1 + (i %% %s)]",
            # A unique value, and a nested one that 1 run in 5,000 shares: the argument searches.
            "arguments": "jsonb_build_object('value', i, 'customer', "
            "jsonb_build_object('id', i %% 5000))",
            "status": "CASE WHEN i <= 5 THEN 'PENDING' WHEN i <= 10 THEN 'STARTED' "
            "WHEN i %% 20 = 0 THEN 'FAILURE' ELSE 'SUCCESS' END",
            "result": "'\"done\"'",
            "error_message": "CASE WHEN i %% 20 = 0 THEN 'bad row ' || i ELSE '' END",
            "origin": "CASE WHEN i %% 5 = 0 THEN 'api' ELSE 'page' END",
            "in_history": "i <= %s",
            "run_as": "CASE WHEN i %% 7 = 0 THEN 'integration-user' ELSE 'admin' END",
            "language": "'en'",
            "queue": "'lime_default_task_queue'",
            "route_type": "'default_queue'",
            "worker": "'w'",
            "created_at": "now() - make_interval(secs => i)",
            "started_at": "now() - make_interval(secs => i)",
            "finished_at": "now() - make_interval(secs => i) + interval '20 ms'",
        },
        [NAMES, len(NAMES), HISTORY * len(NAMES)],
        runs,
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE limepkg_task_starter_taskrun")


def measure(client: Client, url: str, count: int) -> tuple[float, float, int]:
    client.get(url)
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    timings.sort()
    p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
    return statistics.median(timings), p95, len(queries.captured_queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="5,000 runs, 3 requests per page (CI)")
    parser.add_argument(
        "--explain", action="store_true", help="print the search queries' plans at the end"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the runs of a previous fill of the same size"
    )
    options = parser.parse_args()
    if options.quick:
        options.runs, options.requests = 5_000, 3
    call_command("migrate", verbosity=0)
    collect_static(reuse=options.quick)
    Application.objects.update_or_create(
        name="pages", defaults={"config": {"limepkg_task_starter": {"tasks": NAMES}}}
    )
    admin, _ = User.objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(admin)
    print(f"Filling {options.runs:,} runs over {len(NAMES):,} exposed tasks...", flush=True)
    fill(options.runs, reuse=options.reuse)
    # What the task handlers do once a minute: roll the closed hours up for the statistics.
    Application.objects.filter(name="pages").update(stats_through=None)
    started, hours = time.perf_counter(), 0
    while done := stats_rollup():
        hours += done
    print(
        f"Rolled {hours} hours (7 days) of runs up into hourly statistics in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    pages = {
        "task list (first page of 100, with 24 h / 7 d statistics)": "/admin/task-starter/pages/",
        "task list, search": "/admin/task-starter/pages/?q=0999",
        "task page (history of 10, statistics and chart)": f"/admin/task-starter/pages/tasks/{NAMES[7]}/",
    }
    runs = RUNS
    day_ago = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    hour_ago = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    pages |= {
        "runs page (newest 50, with counts)": runs,
        "runs page, live poll": f"{runs}live/",
        "runs, status = FAILURE": f"{runs}?status=FAILURE",
        "runs, one task": f"{runs}?task={NAMES[7]}",
        "runs, one task, FAILURE, last day": f"{runs}?task={NAMES[7]}&status=FAILURE&since={day_ago}",
        "runs, origin = API, last day": f"{runs}?origin=api&since={day_ago}",
        "runs, user (started by or run as)": f"{runs}?user=integration-user",
        "runs, older page (before 500,000th)": f"{runs}?before="
        + (timezone.now() - timedelta(seconds=500_000)).isoformat().replace("+", "%2B"),
        "runs, search in the last hour": f"{runs}?q=bad+row+1&since={hour_ago}",
        **SEARCHES,
        "runs page, live poll, argument search": f"{runs}live/?q=customer.id%3D42",
        "runs page, live poll, text search": f"{runs}live/?q=bad+row+99999",
    }
    print("| page | p50 | p95 | SQL queries |")
    print("| --- | --- | --- | --- |")
    for name, url in pages.items():
        p50, p95, queries = measure(client, url, options.requests)
        print(f"| {name} | {p50 * 1e3:.1f} ms | {p95 * 1e3:.1f} ms | {queries} |", flush=True)
    if options.explain:
        explain_searches()


def explain_searches() -> None:
    """The plans of the runs page's search queries, as the page runs them."""
    application = Application.objects.get(name="pages")
    for name, url in SEARCHES.items():
        filters = RunFilters(search=unquote_plus(url.split("q=", 1)[1]))
        page = with_retry(runs_filtered(application=application, filters=filters, before=None))
        print(f"\n{name}:\n{page[: RUNS_PER_PAGE + 1].explain(analyze=True)}", flush=True)


if __name__ == "__main__":
    main()
