"""django-celery-beat's stock DatabaseScheduler against the Task starter's, with 10,000 cron
schedules (200 of them every minute), in one run on PostgreSQL and Redis.

    .venv/bin/python bench/scheduler.py [--schedules 10000] [--every-minute 200] [--minutes 10]
    .venv/bin/python bench/scheduler.py --quick    # 1,000 schedules, 15 s each (CI)

Each scheduler runs in this process, ticked as celery beat's loop ticks it, with its real
dispatching (to a Redis queue no worker reads; purged afterwards). Measured: startup (until the
first tick is done), the longest tick, the time from an edit made as the admin makes it until the
new schedule is in force, how late the last every-minute dispatch of each minute goes out, and
missed and duplicate every-minute dispatches over the run.

A quick run is too short to wait for a minute to turn: its every-minute schedules last ran a
minute ago, so the first tick dispatches them, and the edit comes a third of the way in.
"""

from __future__ import annotations

# Import order matters here: bench.run sets Django up before any model is imported.

import argparse
import datetime
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import purge  # noqa: E402  (sets up Django on the bench database)
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks  # noqa: E402
from django_celery_beat.schedulers import DatabaseScheduler  # noqa: E402

from limepkg_task_starter.models import SchedulerLock  # noqa: E402
from limepkg_task_starter.scheduler import TaskStarterScheduler  # noqa: E402
from taskstarter.celery import app as celery_app  # noqa: E402

TASK = "bench.solution.tasks.trivial.noop"


def create_schedules(total: int, every_minute: int, *, due_now: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE django_celery_beat_periodictask, django_celery_beat_crontabschedule CASCADE"
        )
    minutely = CrontabSchedule.objects.create(minute="*", hour="*", timezone="UTC")
    # The others: 1,440 distinct daily times, shared as real installations share them.
    daily = CrontabSchedule.objects.bulk_create(
        CrontabSchedule(minute=str(m), hour=str(h), timezone="UTC")
        for h in range(24)
        for m in range(60)
    )
    just_ran = datetime.datetime.now(datetime.UTC)
    minutely_ran = just_ran - datetime.timedelta(minutes=1) if due_now else just_ran
    PeriodicTask.objects.bulk_create(
        PeriodicTask(
            name=f"cron-{i:05d}",
            task=TASK,
            args="[]",
            kwargs="{}",
            headers="{}",
            crontab=minutely if i < every_minute else daily[i % len(daily)],
            last_run_at=minutely_ran if i < every_minute else just_ran,
        )
        for i in range(total)
    )
    PeriodicTasks.update_changed()


def edit_like_the_admin(name: str) -> int:
    """Point one schedule at a new crontab and save it, as the admin's change form does."""
    crontab = CrontabSchedule.objects.create(minute="*/2", hour="*", timezone="UTC")
    periodic = PeriodicTask.objects.get(name=name)
    periodic.crontab = crontab
    periodic.save()
    return crontab.id


def measure(
    scheduler_class: type, minutes: float, every_minute: int, total: int
) -> dict[str, float]:
    edited = f"cron-{total - 1:05d}"
    SchedulerLock.objects.all().delete()
    purge()
    dispatched: list[tuple[str, float]] = []
    started = time.perf_counter()
    scheduler = scheduler_class(app=celery_app, lazy=False)
    original_apply = scheduler.apply_entry

    def apply_entry(entry, producer=None):  # noqa: ANN001, ANN202
        dispatched.append((entry.name, time.time()))
        return original_apply(entry, producer=producer)

    scheduler.apply_entry = apply_entry
    scheduler.tick()
    startup = time.perf_counter() - started

    ticks: list[float] = []
    end = time.time() + minutes * 60
    edit_at = time.time() + min(45, minutes * 20)  # well inside the run
    edited_id = None
    edit_time = None
    in_force_after = None
    while time.time() < end:
        if edited_id is None and time.time() >= edit_at:
            edited_id, edit_time = edit_like_the_admin(edited), time.perf_counter()
        tick_started = time.perf_counter()
        delay = scheduler.tick()
        ticks.append(time.perf_counter() - tick_started)
        if edited_id is not None and in_force_after is None:
            entry = (scheduler._schedule or {}).get(edited)
            if entry is not None and entry.model.crontab_id == edited_id:
                in_force_after = time.perf_counter() - edit_time
        time.sleep(max(0.0, min(delay, 1.0)))
    scheduler.close()

    minutely = [(n, t) for n, t in dispatched if int(n.split("-")[1]) < every_minute]
    boundaries = sorted({int(t // 60) for _, t in minutely})
    full = boundaries[1:-1] if len(boundaries) > 2 else boundaries  # whole minutes only
    counts = Counter((n, int(t // 60)) for n, t in minutely if int(t // 60) in full)
    missed = every_minute * len(full) - len(counts)
    duplicate = sum(c - 1 for c in counts.values() if c > 1)
    lateness = [max(t for _, t in minutely if int(t // 60) == m) - m * 60 for m in full]
    return {
        "startup": startup,
        "longest tick": max(ticks),
        "edit in force": in_force_after if in_force_after is not None else float("nan"),
        "last of minute (median)": statistics.median(lateness) if lateness else float("nan"),
        "last of minute (worst)": max(lateness) if lateness else float("nan"),
        "minutes": len(full),
        "missed": missed,
        "duplicate": duplicate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--every-minute", type=int, default=200)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument(
        "--quick", action="store_true", help="1,000 schedules, 20 every minute, 15 s each (CI)"
    )
    options = parser.parse_args()
    if options.quick:
        options.schedules, options.every_minute, options.minutes = 1_000, 20, 0.25
    call_command("migrate", verbosity=0)
    User.objects.get_or_create(username="integration-user")  # the demo's scheduled task runs as it
    results = {}
    for name, scheduler_class in (
        ("stock DatabaseScheduler", DatabaseScheduler),
        ("TaskStarterScheduler", TaskStarterScheduler),
    ):
        create_schedules(options.schedules, options.every_minute, due_now=options.quick)
        print(f"running {name} for {options.minutes} minutes...", flush=True)
        results[name] = measure(
            scheduler_class, options.minutes, options.every_minute, options.schedules
        )
        if options.quick and not results[name]["minutes"]:
            sys.exit(f"{name} sent none of the every-minute schedules, all due at its start")
    purge()
    print(
        f"\n{options.schedules:,} cron schedules, {options.every_minute} every minute "
        "(PostgreSQL, Redis)"
    )
    if options.quick:
        print("(quick: every-minute schedules due at the start, so lateness is not measured)")
    print("| measure | " + " | ".join(results) + " | target |")
    print("| --- | --- | --- | --- |")
    targets = {
        "startup": "≤ 2 s",
        "longest tick": "≤ 100 ms",
        "edit in force": "≤ 2 s",
        "last of minute (median)": "≤ 1 s",
        "last of minute (worst)": "≤ 1 s",
        "minutes": "",
        "missed": "0",
        "duplicate": "0",
    }
    for measure_name, target in targets.items():
        cells = []
        for values in results.values():
            value = values[measure_name]
            is_count = measure_name in ("minutes", "missed", "duplicate")
            cells.append(f"{value:.0f}" if is_count else f"{value * 1000:.0f} ms")
        print(f"| {measure_name} | " + " | ".join(cells) + f" | {target} |")


if __name__ == "__main__":
    main()
