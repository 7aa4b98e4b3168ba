"""The scheduler: django-celery-beat's DatabaseScheduler, made to hold tens of thousands of
schedules and to run as one dispatcher among several processes.

What it changes, and why:

* Changes are read incrementally. The stock scheduler reloads every enabled row and rebuilds
  its heap after any change (and checks for changes on every tick); here only rows changed
  since the last look are read, at most once a second, and only their heap entries move.
* Entries are cheap. Rows that share a crontab share its parsed schedule, and taking the next
  run of an entry does not parse the row again.
* Bookkeeping is batched: ``last_run_at`` and ``total_run_count`` of everything dispatched are
  written in one statement, after each burst of dispatches.
* One dispatcher. A lease in the database (``SchedulerLock``) says which process dispatches;
  another scheduler started by mistake waits, and takes over when the lease runs out.
* Schedules declared in code are synced into the tables when the scheduler starts.
* A paused schedule (``SchedulePause``) keeps its place in the heap, but its ticks are skipped
  while the pause lasts: nothing is sent, and its next tick is counted from the skipped one,
  so neither resuming nor a pause that ends by itself runs the ticks it held back.
"""

from __future__ import annotations

import datetime
import heapq
import logging
import os
import socket
import time
from json import loads
from typing import Any

from celery import current_app
from celery.beat import event_t
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask, PeriodicTasks
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from lime_task.config import tasks_config
from lime_task.registry import load_scheduled_tasks
from limepkg_task_starter.models import SchedulePause, SchedulerLock
from limepkg_task_starter.schedule_sync import schedule_sync

logger = logging.getLogger(__name__)

# What this subclass relies on that django-celery-beat and Celery do not promise as public API.
# requirements.txt pins the versions it was tested with; tests/limepkg_task_starter/
# test_scheduler.py fails when an installed version no longer has one of these.
UPSTREAM_PRIVATE_METHODS: dict[type, tuple[str, ...]] = {
    DatabaseScheduler: ("_when", "populate_heap", "schedules_equal", "enabled_models_qs"),
    ModelEntry: ("_disable", "_default_now"),
}
UPSTREAM_PRIVATE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    DatabaseScheduler: ("_schedule", "_dirty", "_heap", "old_schedulers"),
}

LOCK_NAME = "scheduler"
# A standby scheduler takes over this long after the dispatching one stopped renewing.
LEASE_SECONDS = float(os.environ.get("LIME_SCHEDULER_LEASE_SECONDS", "10"))
RENEW_EVERY_SECONDS = LEASE_SECONDS / 3
# Schedule changes are looked for at most this often (a change takes effect up to this late).
CHANGE_CHECK_SECONDS = float(os.environ.get("LIME_SCHEDULER_CHANGE_CHECK_SECONDS", "1"))
# Rows saved up to this long before a check may commit after it: read them again next time.
COMMIT_MARGIN = datetime.timedelta(seconds=5)
STANDBY_SLEEP_SECONDS = 1.0


class CachedEntry(ModelEntry):  # type: ignore[misc]
    """A ModelEntry that parses each crontab once, and whose next run reuses the parsed row."""

    # Keyed by the crontab's definition, not its id: ids can be reused, definitions cannot lie.
    _schedules: dict[tuple[str, ...], Any] = {}

    def __init__(self, model: PeriodicTask, app: Any = None) -> None:
        if model.crontab_id is None:
            super().__init__(model, app=app)
            return
        # ModelEntry.__init__, with the crontab's schedule taken from the cache: building it
        # (Celery parses every cron field) is most of what loading 10,000 rows costs.
        self.app = app or current_app
        self.name = model.name
        self.task = model.task
        crontab = model.crontab
        key = (
            crontab.minute,
            crontab.hour,
            crontab.day_of_week,
            crontab.day_of_month,
            crontab.month_of_year,
            str(crontab.timezone),
        )
        self.schedule = self._schedules.get(key)
        if self.schedule is None:
            self.schedule = self._schedules[key] = model.schedule
        try:
            self.args = loads(model.args or "[]")
            self.kwargs = loads(model.kwargs or "{}")
        except ValueError as exc:
            logger.exception("Removing schedule %s for argument error: %r", self.name, exc)
            self._disable(model)
        self.options = {
            option: getattr(model, option)
            for option in ("queue", "exchange", "routing_key", "priority")
            if getattr(model, option) is not None
        }
        if getattr(model, "expires_", None):
            self.options["expires"] = model.expires_
        headers = loads(model.headers or "{}")
        headers["periodic_task_name"] = model.name
        self.options["headers"] = headers
        self.total_run_count = model.total_run_count
        self.model = model
        if not model.last_run_at:
            model.last_run_at = model.date_changed or self._default_now()
            if model.start_time:
                model.last_run_at -= datetime.timedelta(days=365 * 30)
        self.last_run_at = model.last_run_at

    def __next__(self) -> CachedEntry:
        self.model.last_run_at = self._default_now()
        self.model.total_run_count += 1
        self.model.no_changes = True
        following = self.__class__.__new__(self.__class__)
        following.__dict__.update(self.__dict__)
        following.last_run_at = self.model.last_run_at
        following.total_run_count = self.model.total_run_count
        return following


class TaskStarterScheduler(DatabaseScheduler):  # type: ignore[misc]
    Entry = CachedEntry
    # The stock scheduler's state this one works on (see UPSTREAM_PRIVATE_ATTRIBUTES): the
    # entries by name, None until loaded; the names dispatched since the last sync; the heap.
    _schedule: dict[str, CachedEntry] | None
    _dirty: set[str]
    _heap: list[event_t] | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._holds_lock = False
        self._lock_checked = 0.0
        self._changes_checked = 0.0
        self._changed_since: datetime.datetime | None = None
        self._known_change: datetime.datetime | None = None
        self._crontabs: dict[int, tuple[Any, ...]] = {}
        self._loaded_at = 0.0
        self._row_count = 0
        # Paused periodic tasks by id: when the pause ends (None: when resumed).
        self._pauses: dict[int, datetime.datetime | None] = {}
        super().__init__(*args, **kwargs)

    # --- Startup ------------------------------------------------------------------------------

    def setup_schedule(self) -> None:
        if tasks_config().enable_scheduled_tasks:
            report = schedule_sync(declared=load_scheduled_tasks(settings.LIME_PACKAGES))
            logger.info(
                "Scheduled tasks synced: %d created, %d updated, %d removed",
                report.created,
                report.updated,
                report.removed,
            )
        super().setup_schedule()

    def enabled_models_qs(self) -> Any:
        rows = PeriodicTask.objects.filter(enabled=True).select_related(
            "crontab", "interval", "solar", "clocked"
        )
        if not tasks_config().enable_scheduled_tasks:
            rows = rows.exclude(declaration__isnull=False)
        return rows

    def all_as_schedule(self) -> dict[str, CachedEntry]:
        self._loaded_at = time.monotonic()
        self._row_count = PeriodicTask.objects.count()
        self._changed_since = timezone.now()
        self._known_change = PeriodicTasks.last_change()
        self._crontabs = _crontab_definitions()
        self._pauses = schedule_pauses()
        CachedEntry._schedules.clear()
        entries = {}
        for model in self.enabled_models_qs():
            try:
                entries[model.name] = self.Entry(model, app=self.app)
            except ValueError:
                logger.exception("Schedule %s cannot be read; skipped", model.name)
        return entries

    # --- Changes, incrementally -----------------------------------------------------------------

    @property
    def schedule(self) -> dict[str, CachedEntry]:
        if self._schedule is None:
            self._schedule = self.all_as_schedule()
            return self._schedule
        now = time.monotonic()
        if now - self._changes_checked >= CHANGE_CHECK_SECONDS:
            self._changes_checked = now
            self._apply_changes()
        return self._schedule

    def _apply_changes(self) -> None:
        try:
            close_old_connections()
            checked_at = timezone.now()
            last_change = PeriodicTasks.last_change()
            if last_change is None or last_change == self._known_change:
                # Nothing committed since the last look: later rows are newer than this.
                self._changed_since = checked_at
                return
        except DatabaseError:
            logger.exception("Reading schedule changes failed; retrying")
            return
        # Write what was dispatched before reading the changed rows (as the stock scheduler
        # syncs before it reloads): a row edited right after it fired must come back with that
        # run's last_run_at and count, or it could be due again at once.
        self.sync()
        if self._dirty:
            return  # the bookkeeping is not written yet: read the changes once it is
        try:
            since = (self._changed_since or checked_at) - COMMIT_MARGIN
            self._changed_since = checked_at
            self._known_change = last_change
            # An edited crontab row changes its tasks without touching them.
            crontabs = _crontab_definitions()
            edited = [i for i, fields in crontabs.items() if self._crontabs.get(i) != fields]
            self._crontabs = crontabs
            changed = list(
                PeriodicTask.objects.filter(
                    Q(date_changed__gte=since) | Q(crontab_id__in=edited)
                ).select_related("crontab", "interval", "solar", "clocked")
            )
            # Deletions send the change signal but leave no row to read: look for them only
            # when the number of rows went down.
            rows = PeriodicTask.objects.count()
            existing = (
                set(PeriodicTask.objects.values_list("name", flat=True))
                if rows < self._row_count
                else None
            )
            self._row_count = rows
            if changed:  # a pause or a resume moves its periodic task's date_changed
                self._pauses = schedule_pauses()
        except DatabaseError:
            logger.exception("Reading schedule changes failed; retrying")
            return
        edited_crontabs = set(edited)
        for model in changed:
            held = self._loaded().get(model.name)
            if (
                held is not None
                and held.model.date_changed == model.date_changed
                and model.crontab_id not in edited_crontabs
            ):
                continue  # read again only because of the commit margin: nothing new
            self._replace(model)
        for name in set(self._loaded()) - existing if existing is not None else ():
            self._drop(name)
        if changed:
            logger.info("Schedule changes in force: %d rows", len(changed))

    def _replace(self, model: PeriodicTask) -> None:
        excluded = not tasks_config().enable_scheduled_tasks and hasattr(model, "declaration")
        if not model.enabled or excluded:
            self._drop(model.name)
            return
        try:
            entry = self.Entry(model, app=self.app)
        except ValueError:
            logger.exception("Schedule %s cannot be read; skipped", model.name)
            return
        self._loaded()[model.name] = entry
        if self._heap is not None:
            is_due, next_time_to_run = self.is_due(entry)
            heapq.heappush(
                self._heap,
                event_t(self._when(entry, 0 if is_due else next_time_to_run), 5, entry),
            )

    def _loaded(self) -> dict[str, CachedEntry]:
        if self._schedule is None:
            self._schedule = self.all_as_schedule()
        return self._schedule

    def _drop(self, name: str) -> None:
        self._loaded().pop(name, None)
        # Its heap event is skipped when it comes up (see tick).

    def schedule_changed(self) -> bool:
        # Changes are applied to the entries and to the heap as they are read (see schedule),
        # so nothing is left over for a full rebuild to catch.
        return False

    def schedules_equal(self, *args: Any, **kwargs: Any) -> bool:
        # The heap is kept in step incrementally: rebuild it only when schedule_changed() says
        # so (a subclass or a tool may), never merely because the dict of entries changed.
        # (celery.beat builds the heap itself while there is none).
        return not self.schedule_changed()

    # --- One dispatcher ------------------------------------------------------------------------

    def _lease(self) -> bool:
        now = time.monotonic()
        if now - self._lock_checked < (RENEW_EVERY_SECONDS if self._holds_lock else 1.0):
            return self._holds_lock
        self._lock_checked = now
        try:
            self._holds_lock = acquire_lease(holder=self.holder)
        except DatabaseError:
            logger.exception("Scheduler lease check failed")
            self._holds_lock = False
        return self._holds_lock

    def tick(self, *args: Any, **kwargs: Any) -> float:
        was_holding = self._holds_lock
        if not self._lease():
            if was_holding:
                logger.warning("Scheduler %s lost the dispatch lease; standing by", self.holder)
            return STANDBY_SLEEP_SECONDS
        if not was_holding:
            logger.info("Scheduler %s holds the dispatch lease", self.holder)
            if time.monotonic() - self._loaded_at > RENEW_EVERY_SECONDS:
                # Another scheduler dispatched while this one stood by: start from the table.
                self._schedule = None
                self._heap = None
        schedule = self.schedule
        if self._heap is None:
            self.old_schedulers = schedule
            self.populate_heap()
        heap = self._heap
        # Skip events of entries that were changed or removed since they were pushed.
        while heap and schedule.get(str(heap[0].entry.name)) is not heap[0].entry:
            heapq.heappop(heap)
        delay = super().tick(*args, **kwargs)
        if delay > 0 and self._dirty:
            self.sync()  # a burst of dispatches is over: record it in one statement
        return float(delay)

    def reserve(self, entry: CachedEntry) -> CachedEntry:
        following: CachedEntry = super().reserve(entry)
        self._loaded()[following.name] = following
        return following

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        if self._paused(entry):
            logger.info("Schedule %s is paused: this tick is skipped, not sent", entry.name)
            entry.model.total_run_count -= 1  # reserve() counted it as a run
            return
        super().apply_entry(entry, producer=producer)

    def _paused(self, entry: Any) -> bool:
        model = getattr(entry, "model", None)
        if model is None or model.pk not in self._pauses:
            return False
        until = self._pauses[model.pk]
        return until is None or timezone.now() < until

    # --- Bookkeeping, batched -----------------------------------------------------------------

    def sync(self) -> None:
        if not self._dirty or self._schedule is None:
            return
        names, self._dirty = self._dirty, set()
        entries = [entry for entry in map(self._schedule.get, names) if entry is not None]
        # An entry class with a save() of its own gets it called, as the stock sync does; the
        # rest are written in one batch.
        saving, rows = [], []
        for entry in entries:
            if type(entry).save is ModelEntry.save:
                rows.append((entry.model.last_run_at, entry.model.total_run_count, entry.model.pk))
            else:
                saving.append(entry)
        try:
            close_old_connections()
            with transaction.atomic():
                for entry in saving:
                    entry.save()
                record_dispatches(rows)
        except DatabaseError:
            logger.exception("Recording %d dispatches failed; retrying", len(entries))
            self._dirty |= names

    def close(self) -> None:
        super().close()
        if self._holds_lock:
            release_lease(holder=self.holder)


def record_dispatches(rows: list[tuple[datetime.datetime, int, int]]) -> None:
    """Write last_run_at and total_run_count of many periodic tasks in one round of statements.

    A plain UPDATE per row, sent as one batch: unlike ``save()`` it sends no change signal, so
    the scheduler's own bookkeeping is not mistaken for an administrator's edit, and unlike
    ``bulk_update`` it does not build one CASE expression per row.
    """
    table = connection.ops.quote_name(PeriodicTask._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET last_run_at = %s, total_run_count = %s WHERE id = %s", rows
        )


def schedule_pauses() -> dict[int, datetime.datetime | None]:
    """Every paused periodic task's id, with when its pause ends by itself (None: never)."""
    return dict(SchedulePause.objects.values_list("periodic_task_id", "until"))


def _crontab_definitions() -> dict[int, tuple[Any, ...]]:
    return {
        row[0]: row[1:]
        for row in CrontabSchedule.objects.values_list(
            "id", "minute", "hour", "day_of_week", "day_of_month", "month_of_year", "timezone"
        )
    }


def acquire_lease(*, holder: str, seconds: float = LEASE_SECONDS) -> bool:
    """Take or renew the dispatch lease; True when ``holder`` has it."""
    now = timezone.now()
    expires = now + datetime.timedelta(seconds=seconds)
    taken = SchedulerLock.objects.filter(
        Q(holder=holder) | Q(expires_at__lt=now), name=LOCK_NAME
    ).update(holder=holder, expires_at=expires)
    if taken:
        return True
    try:
        with transaction.atomic():
            SchedulerLock.objects.create(name=LOCK_NAME, holder=holder, expires_at=expires)
    except DatabaseError:
        return False  # another scheduler holds it (or just took it)
    return True


def release_lease(*, holder: str) -> None:
    SchedulerLock.objects.filter(name=LOCK_NAME, holder=holder).delete()
