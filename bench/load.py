"""The production server under load: Locust against gunicorn on PostgreSQL + Redis, with two task
handlers, for a minute.

    .venv/bin/python bench/load.py [--seconds 60] [--watchers 50] [--starters 8]
    .venv/bin/python bench/load.py --quick    # 10 s, 5 watchers, 2 starters (CI)

Watchers are administrators with a task page open (its history poll every second, the page and
a run's status through the API now and then); starters start the task through the API as fast
as the server answers. Reported: starts per second held, each request's p50/p95/p99, errors
(the goal is none), and whether every started run reached a final state (none lost or stuck).
A quick run fails (exit 1) on any of those errors; a full run reports them.
"""

from __future__ import annotations

# Import order matters here: bench.run sets Django up before any model is imported.

import argparse
import contextlib
import csv
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import NOOP, PROJECT_DIR, purge, reset_database, start_our_worker, wait  # noqa: E402
from bench.environment import collect_static  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.auth.models import Permission, User  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402

from limepkg_task_starter.models import Application, TaskRun  # noqa: E402
from limepkg_task_starter.services.tokens import api_token_create  # noqa: E402
from tests.support.server import start_production_server  # noqa: E402

APPLICATION = "load"
SETTLE_SECONDS = 300


def prepare(watchers: int) -> dict[str, str]:
    """The application, an administrator logged in once per watcher, and a token to start with."""
    reset_database()
    purge()
    Application.objects.filter(name=APPLICATION).delete()
    application = Application.objects.create(
        name=APPLICATION, config={"limepkg_task_starter": {"task_history": 20, "tasks": [NOOP]}}
    )
    User.objects.filter(username="load-watcher").delete()
    user = User.objects.create_user(
        "load-watcher", password=secrets.token_urlsafe(16), is_staff=True
    )
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_taskrun", "start_task"])
    )
    application.members.add(user)
    _, token = api_token_create(user=user, name="load")
    return {
        "LOAD_APPLICATION": APPLICATION,
        "LOAD_TASK": NOOP,
        "LOAD_SESSIONS": ",".join(logged_in(user) for _ in range(watchers)),
        "LOAD_TOKEN": token,
    }


def logged_in(user: User) -> str:
    """A session key for ``user``, as logging in through the admin makes one."""
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return str(session.session_key)


def run_locust(host: str, environment: dict[str, str], seconds: int, users: int, out: Path) -> int:
    """Locust's exit status: 1 when any request failed or a user raised."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("locust")),
            "-f",
            str(PROJECT_DIR / "bench" / "locustfile.py"),
            "--headless",
            "--host",
            host,
            "--users",
            str(users),
            "--spawn-rate",
            str(users),
            "--run-time",
            f"{seconds}s",
            "--csv",
            str(out / "load"),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        env={**os.environ, **environment},
        check=False,  # Locust exits 1 when any request failed: reported below
        timeout=seconds + 120,
    ).returncode


def read_stats(out: Path) -> list[dict[str, str]]:
    with (out / "load_stats.csv").open() as stats:
        return list(csv.DictReader(stats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--starters", type=int, default=8)
    parser.add_argument(
        "--quick", action="store_true", help="10 s, 5 watchers, 2 starters; fails on errors (CI)"
    )
    options = parser.parse_args()
    if options.quick:
        options.seconds, options.watchers, options.starters = 10, 5, 2
    call_command("migrate", verbosity=0)
    collect_static(reuse=options.quick)
    environment = prepare(options.watchers)
    environment.update(LOAD_WATCHERS=str(options.watchers), LOAD_STARTERS=str(options.starters))
    out = Path(tempfile.mkdtemp(prefix="load-"))
    workers, server = [], None
    try:
        for _ in range(2):
            workers.append(start_our_worker(concurrency=2))
        server = start_production_server(out, env={"LIME_PACKAGES": "bench.solution"}, workers=3)
        print(
            f"Locust: {options.watchers} watchers, {options.starters} starters, "
            f"{options.seconds} s against gunicorn (3 workers), 2 task handlers (-c 2)",
            flush=True,
        )
        locust_status = run_locust(
            server.url,
            environment,
            options.seconds,
            options.watchers + options.starters,
            out,
        )
        rows = read_stats(out)
        starts = next(r for r in rows if r["Name"] == "start")
        accepted = int(starts["Request Count"]) - int(starts["Failure Count"])
        print("  waiting for every started run to finish...", flush=True)
        runs = TaskRun.objects.filter(application_id=APPLICATION)
        with contextlib.suppress(TimeoutError):  # what is still open is reported as stuck
            wait(
                lambda: not runs.filter(status__in=["PENDING", "STARTED"]).exists(),
                SETTLE_SECONDS,
                0.5,
            )
    finally:
        if server is not None:
            server.stop()
        for worker in workers:
            worker.stop()

    recorded = runs.count()
    stuck = runs.filter(status__in=["PENDING", "STARTED"]).count()
    succeeded = runs.filter(status="SUCCESS").count()
    print()
    print("| request | count | failures | req/s | p50 | p95 | p99 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['Name']} | {row['Request Count']} | {row['Failure Count']} | "
            f"{float(row['Requests/s']):.1f} | {row['50%']} ms | {row['95%']} ms | {row['99%']} ms |"
        )
    print()
    print(
        f"starts held: {accepted / options.seconds:.1f}/s ({accepted} answered 202 in the window)"
    )
    # Locust counts requests within its window; starts still in flight when it ends are
    # recorded too, so the run table can hold a few more than it counted.
    print(
        f"runs: {recorded} recorded, {succeeded} SUCCESS, {stuck} stuck (not final after "
        f"{SETTLE_SECONDS} s), {max(accepted - recorded, 0)} lost (202 without a run)"
    )
    failed = next(int(r["Failure Count"]) for r in rows if r["Name"] == "Aggregated")
    if locust_status or failed or stuck or accepted > recorded or not accepted:
        print(f"Locust's and gunicorn's output is kept in {out}")
        if options.quick:
            sys.exit(
                f"load failed: Locust exit {locust_status}, {failed} failed requests, "
                f"{stuck} stuck, {max(accepted - recorded, 0)} lost, {accepted} started"
            )
    else:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
