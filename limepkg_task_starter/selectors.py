"""Reads. Each returns plain values or querysets; none of them writes."""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import (
    Count,
    Exists,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Window,
)
from django.db.models.functions import RowNumber
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from lime_task import headers
from lime_task.config import ApplicationConfig
from lime_task.exceptions import UnknownTaskError
from lime_task.registry import get_task
from lime_task.status import Origin, State, TaskStatus
from limepkg_task_starter.models import (
    DURATION_COLUMNS,
    RUN_FINISHED_CHANNEL,
    Application,
    BulkAction,
    BulkActionItem,
    BulkActionKind,
    BulkActionState,
    BulkItemOutcome,
    QueuePause,
    RunLog,
    ScheduleDeclaration,
    TaskRun,
    TaskStatsHour,
    WorkerHeartbeat,
)
from limepkg_task_starter.run_search import parse_search, runs_searched
from limepkg_task_starter.schedule_summary import (
    ScheduleRow,
    ScheduleSummary,
    periodic_headers,
    schedule_row,
    summarise,
)
from limepkg_task_starter.stats import Outcomes, floor_hour, hours_between

# Every send reads its application's config: it is kept here, per process, for a while. A
# change saved in this process clears it at once (signals below); other processes see it within
# _CACHED_FOR_SECONDS, and the foreign key refuses a run for an application deleted meanwhile.
_CACHED_FOR_SECONDS = 60.0
_application_settings: dict[str, tuple[float, ApplicationConfig]] = {}


def application_settings(*, name: str) -> ApplicationConfig | None:
    """The application's checked config, or None when there is no such application."""
    now = time.monotonic()
    cached = _application_settings.get(name)
    if cached is not None and cached[0] > now:
        return cached[1]
    application = Application.objects.filter(name=name).only("name", "config").first()
    if application is None:
        return None
    _application_settings[name] = (now + _CACHED_FOR_SECONDS, application.typed_config)
    return application.typed_config


def application_settings_forget(*, name: str) -> None:
    _application_settings.pop(name, None)


@receiver([post_save, post_delete], sender=Application)
def _application_changed(*, instance: Application, **_: Any) -> None:
    application_settings_forget(name=instance.name)


def application_config_get(*, name: str) -> dict[str, Any] | None:
    config = Application.objects.filter(name=name).values_list("config", flat=True).first()
    return None if config is None else dict(config)


def _is_run_id(text: str) -> bool:
    """An id the history could hold: PostgreSQL refuses U+0000 in a query's text."""
    return "\x00" not in text


def run_status_get(*, task_id: str, application_name: str) -> TaskStatus | None:
    if not _is_run_id(task_id):
        return None
    row = (
        TaskRun.objects.filter(id=task_id, application_id=application_name)
        .values_list("status", "result")
        .first()
    )
    if row is None:
        return None
    status, result = row
    return TaskStatus(task_id, status, result if status != State.PENDING else None)


# How long one wait for a notification lasts before the row is read again: a notification that
# arrived while the row was being read is not lost for longer than this.
_WAIT_SLICE_SECONDS = 0.25
_POLL_SECONDS = 0.01


def runs_cancelled(*, run_ids: list[str]) -> list[str]:
    """Which of these runs were cancelled (the ones their task handler must stop)."""
    return list(
        TaskRun.objects.filter(id__in=run_ids, cancelled_at__isnull=False).values_list(
            "id", flat=True
        )
    )


def worker_last_seen(*, hostname: str) -> datetime | None:
    return (
        WorkerHeartbeat.objects.filter(hostname=hostname)
        .values_list("last_seen", flat=True)
        .first()
    )


def run_status_wait(*, task_id: str, application_name: str, timeout: float) -> TaskStatus | None:
    """The run's status once it has completed, or when ``timeout`` seconds are up.

    On PostgreSQL it listens for the worker's announcement that a run finished (LISTEN/NOTIFY),
    so it returns within a round trip of the worker's write; elsewhere it reads every 10 ms.
    """
    deadline = time.monotonic() + timeout
    listening = connection.vendor == "postgresql" and not connection.in_atomic_block
    if listening:
        connection.ensure_connection()
        connection.cursor().execute(f"LISTEN {RUN_FINISHED_CHANNEL}")
    try:
        while True:
            status = run_status_get(task_id=task_id, application_name=application_name)
            remaining = deadline - time.monotonic()
            if status is None or status.is_completed() or remaining <= 0:
                return status
            if listening:
                _wait_for_announcement(task_id, min(remaining, _WAIT_SLICE_SECONDS))
            else:
                time.sleep(min(remaining, _POLL_SECONDS))
    finally:
        if listening:
            connection.cursor().execute(f"UNLISTEN {RUN_FINISHED_CHANNEL}")


def _wait_for_announcement(task_id: str, timeout: float) -> None:
    raw = connection.connection  # psycopg's connection, under Django's
    for notice in raw.notifies(timeout=timeout):
        if notice.payload == task_id:
            return


def applications_for_user(*, user: Any) -> Any:
    """The applications whose Task starter this person may use."""
    applications = Application.objects.order_by("name")
    return applications if user.is_superuser else applications.filter(members=user)


def application_for_user(*, user: Any, name: str) -> Application | None:
    found: Application | None = applications_for_user(user=user).filter(name=name).first()
    return found


@dataclass(frozen=True)
class TaskSummary:
    name: str
    description: str
    registered: bool
    last_status: str | None = None
    last_started: datetime | None = None

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


NOT_REGISTERED = "Not a registered task: check LIME_PACKAGES and get_task_modules()."


def _description(name: str) -> tuple[str, bool]:
    try:
        found = get_task(name)
    except UnknownTaskError:
        return NOT_REGISTERED, False
    return (inspect.getdoc(found.run) or "").strip(), True


def latest_runs(*, application: Application, task_names: list[str]) -> dict[str, TaskRun]:
    """The newest history run of each task, in one query over the history index."""
    newest_first = Window(
        RowNumber(), partition_by=[F("task_name")], order_by=F("created_at").desc()
    )
    runs = (
        TaskRun.objects.filter(application=application, in_history=True, task_name__in=task_names)
        .annotate(position=newest_first)
        .filter(position=1)
        .only("id", "task_name", "status", "created_at")
    )
    return {run.task_name: run for run in runs}


def task_summaries(*, application: Application, task_names: list[str]) -> list[TaskSummary]:
    last = latest_runs(application=application, task_names=task_names)
    summaries = []
    for name in task_names:
        description, registered = _description(name)
        run = last.get(name)
        summaries.append(
            TaskSummary(
                name=name,
                description=description,
                registered=registered,
                last_status=run.status if run else None,
                last_started=run.created_at if run else None,
            )
        )
    return summaries


def exposed_task_names(*, application: Application, search: str = "") -> list[str]:
    names = application.exposed_tasks
    if search:
        needle = search.lower()
        names = [n for n in names if needle in n.lower() or needle in _description(n)[0].lower()]
    return names


def with_retry(runs: QuerySet[TaskRun]) -> QuerySet[TaskRun]:
    """Runs with their latest rerun's id and status (``retried_as``, ``retried_status``, None
    if never run again), for "Retried → …"; one subquery each on the rerun_of index."""
    latest = TaskRun.objects.filter(rerun_of=OuterRef("pk")).order_by("-created_at")
    return runs.annotate(
        retried_as=Subquery(latest.values("id")[:1]),
        retried_status=Subquery(latest.values("status")[:1]),
    )


def history_runs(*, application: Application, task_name: str) -> list[TaskRun]:
    return list(
        with_retry(
            TaskRun.objects.filter(application=application, task_name=task_name, in_history=True)
        )
        .select_related("started_by")
        .order_by("-created_at")[: application.task_history]
    )


def run_log_of(*, run: TaskRun) -> RunLog | None:
    """What the task handler captured of the run's log lines, if any."""
    return RunLog.objects.filter(run=run).first()


def reruns_of(*, run: TaskRun) -> list[TaskRun]:
    """The runs started again from ``run``, oldest first."""
    return list(run.reruns.order_by("created_at"))


def run_for_user(*, user: Any, run_id: str) -> TaskRun | None:
    """A run of an application this person may use, or None: other applications' runs are
    indistinguishable from runs that do not exist."""
    if not _is_run_id(run_id):
        return None
    return (
        with_retry(
            TaskRun.objects.filter(id=run_id, application__in=applications_for_user(user=user))
        )
        .select_related("application", "started_by", "rerun_of", "cancelled_by")
        .first()
    )


def schedules_for_task(*, application: Application, task_name: str) -> list[ScheduleSummary]:
    """The task's schedules in this application, with their cron in words and next runs."""
    declarations = ScheduleDeclaration.objects.filter(
        application=application, task_name=task_name
    ).select_related("periodic_task__crontab")
    now = timezone.now()
    return [summarise(d, now=now) for d in declarations if d.periodic_task.crontab_id]


def scheduled_task_names(*, application: Application, task_names: list[str]) -> set[str]:
    """Which of these tasks run on an enabled schedule in this application."""
    return set(
        ScheduleDeclaration.objects.filter(
            application=application,
            task_name__in=task_names,
            removed_at__isnull=True,
            periodic_task__enabled=True,
        ).values_list("task_name", flat=True)
    )


def declaration_for_user(*, user: Any, declaration_id: int) -> ScheduleDeclaration | None:
    return (
        ScheduleDeclaration.objects.filter(
            id=declaration_id, application__in=applications_for_user(user=user)
        )
        .select_related("application", "periodic_task__crontab")
        .first()
    )


# --- The runs page ----------------------------------------------------------------------------

RUNS_PER_PAGE = 50


# Text search reads each run's text, so one request reads this many runs at most, the newest
# the other filters leave (older ones with ``before``): reading every run would take seconds
# on a large history, and the live poll repeats it.
TEXT_SEARCH_RUNS = 10_000


@dataclass(frozen=True)
class RunFilters:
    """What the runs page narrows to; empty means everything."""

    status: str = ""
    task: str = ""
    origin: str = ""
    user: str = ""  # who started it, or whom it ran as
    since: datetime | None = None
    until: datetime | None = None
    search: str = ""  # key=value terms for the arguments, words for their text (run_search)

    @property
    def any(self) -> bool:
        return any(
            (self.status, self.task, self.origin, self.user, self.since, self.until, self.search)
        )


def runs_filtered(*, application: Application, filters: RunFilters, before: datetime | None) -> Any:
    """An application's runs, newest first, narrowed by ``filters``, older than ``before``.

    Every filter is served by an index: on (application, …, created_at), or for ``key=value``
    the arguments' GIN index (PostgreSQL). Words of a text search are looked for in the newest
    :data:`TEXT_SEARCH_RUNS` runs only (:func:`text_search_start`). Raises
    :class:`~limepkg_task_starter.run_search.SearchError` for a search that cannot be read
    (the page's form says so at the field instead).
    """
    runs = _runs_narrowed(application=application, filters=filters, before=before)
    search = parse_search(filters.search)
    if search.words:
        start = _text_search_start(runs)
        if start is not None:
            runs = runs.filter(created_at__gte=start)
    runs = runs_searched(runs, search)
    return runs.select_related("started_by", "cancelled_by").order_by("-created_at")


def _runs_narrowed(
    *, application: Application, filters: RunFilters, before: datetime | None
) -> QuerySet[TaskRun]:
    """The runs of every filter but the search."""
    runs = TaskRun.objects.filter(application=application)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.task:
        runs = runs.filter(task_name=filters.task)
    if filters.origin:
        runs = runs.filter(origin=filters.origin)
    if filters.user:
        runs = runs.filter(Q(started_by__username=filters.user) | Q(run_as=filters.user))
    if filters.since:
        runs = runs.filter(created_at__gte=filters.since)
    if filters.until:
        runs = runs.filter(created_at__lt=filters.until)
    if before:
        runs = runs.filter(created_at__lt=before)
    return runs


def _text_search_start(runs: QuerySet[TaskRun]) -> datetime | None:
    """When the :data:`TEXT_SEARCH_RUNS`-th newest of ``runs`` was sent, or None when there
    are fewer (then a text search reads them all); one walk down a created_at index."""
    newest = runs.order_by("-created_at").values_list("created_at", flat=True)
    found = list(newest[TEXT_SEARCH_RUNS - 1 : TEXT_SEARCH_RUNS])
    return found[0] if found else None


def text_search_start(
    *, application: Application, filters: RunFilters, before: datetime | None = None
) -> datetime | None:
    """Where a text search with these filters stops reading (the page says so, with a link
    that reads on from there), or None when it reads every run they leave or has no words."""
    if not parse_search(filters.search).words:
        return None
    return _text_search_start(
        _runs_narrowed(application=application, filters=filters, before=before)
    )


def runs_page(
    *, application: Application, filters: RunFilters, before: datetime | None = None
) -> tuple[list[TaskRun], datetime | None]:
    """One page of runs and where the next (older) page starts, or None at the end."""
    runs = list(
        with_retry(runs_filtered(application=application, filters=filters, before=before))[
            : RUNS_PER_PAGE + 1
        ]
    )
    if len(runs) > RUNS_PER_PAGE:
        return runs[:RUNS_PER_PAGE], runs[RUNS_PER_PAGE - 1].created_at
    return runs, None


@dataclass(frozen=True)
class RunCounts:
    running: int
    queued: int
    failed_last_day: int


def run_counts(
    *, application: Application, now: datetime | None = None, search: str = ""
) -> RunCounts:
    """Running and queued now, failed in the last 24 hours: three counts over the
    (application, status, created_at) index, never a scan of the application's runs. With a
    ``search``, of the runs it finds (words: in the runs a text search reads).

    A failure that was retried is not counted: its retry is (once, if it fails too)."""
    now = now or timezone.now()
    runs = TaskRun.objects.filter(application=application)
    searched = parse_search(search)
    if searched.words:
        start = _text_search_start(runs)
        if start is not None:
            runs = runs.filter(created_at__gte=start)
    runs = runs_searched(runs, searched)
    return RunCounts(
        running=runs.filter(status=State.STARTED).count(),
        queued=runs.filter(status=State.PENDING).count(),
        failed_last_day=runs.filter(status=State.FAILURE, created_at__gte=now - timedelta(days=1))
        .exclude(Exists(TaskRun.objects.filter(rerun_of=OuterRef("pk"))))
        .count(),
    )


def run_task_names(*, application: Application) -> list[str]:
    """Tasks to filter by: the exposed ones (runs of others are found by search or origin)."""
    return sorted(application.exposed_tasks)


def runs_by_ids(*, application: Application, run_ids: list[str]) -> list[TaskRun]:
    """The given runs of this application, newest first; ids of others are left out."""
    return list(
        with_retry(
            TaskRun.objects.filter(
                application=application, id__in=[i for i in run_ids if _is_run_id(i)]
            )
        )
        .select_related("application", "started_by")
        .order_by("-created_at")
    )


# --- Over the whole filter: bulk actions, export, the API's list ----------------------------

# The most runs one bulk action acts on: the newest that match (services.bulk).
MAX_BULK_ITEMS = 1000
# The most runs one CSV export holds: the newest that match.
MAX_EXPORT_ROWS = 50_000


@dataclass(frozen=True)
class BulkOverview:
    """How many runs "Retry all" and "Cancel all" would act on, counted up to one past the
    cap, so the count stays cheap on any history."""

    retry: int
    cancel: int
    cap: int = MAX_BULK_ITEMS


def bulk_overview(*, application: Application, filters: RunFilters) -> BulkOverview:
    def count(kind: str) -> int:
        runs = runs_to_act_on(application=application, filters=filters, kind=kind)
        return count_up_to(runs, MAX_BULK_ITEMS + 1)

    return BulkOverview(
        retry=count(BulkActionKind.RETRY),
        cancel=count(BulkActionKind.CANCEL),
    )


def runs_to_act_on(*, application: Application, filters: RunFilters, kind: str) -> Any:
    """What "Retry all … matching" (failed runs not retried yet) or "Cancel all … matching"
    (waiting runs) would act on: the runs page's filter, narrowed, newest first."""
    runs = runs_filtered(application=application, filters=filters, before=None)
    if kind == BulkActionKind.RETRY:
        return runs.filter(status=State.FAILURE).exclude(
            Exists(TaskRun.objects.filter(rerun_of=OuterRef("pk")))
        )
    return runs.filter(status=State.PENDING)


def count_up_to(runs: Any, limit: int) -> int:
    """How many rows ``runs`` has, counted no further than ``limit``: bounded on any table."""
    count: int = runs.order_by()[:limit].count()
    return count


def runs_after(
    *, application: Application, filters: RunFilters, after: tuple[datetime, str] | None
) -> Any:
    """The filter's runs in a stable order, newest first and by id among runs sent at the same
    moment, from just after the run ``after`` names (keyset pagination: a run that arrives
    meanwhile neither shifts nor repeats a page)."""
    runs = runs_filtered(application=application, filters=filters, before=None)
    if after is not None:
        moment, run_id = after
        runs = runs.filter(created_at__lte=moment).filter(
            Q(created_at__lt=moment) | Q(created_at=moment, id__lt=run_id)
        )
    return runs.order_by("-created_at", "-id")


@dataclass(frozen=True)
class BulkProgress:
    action: BulkAction
    total: int
    done: int
    refused: int

    @property
    def processed(self) -> int:
        return self.done + self.refused

    @property
    def finished(self) -> bool:
        return self.action.state != BulkActionState.RUNNING


def bulk_progress(*, action: BulkAction) -> BulkProgress:
    counts = dict(
        action.items.order_by()
        .values_list("outcome")
        .annotate(count=Count("id"))
        .values_list("outcome", "count")
    )
    return BulkProgress(
        action=action,
        total=sum(counts.values()),
        done=counts.get(BulkItemOutcome.DONE, 0),
        refused=counts.get(BulkItemOutcome.REFUSED, 0),
    )


def bulk_action_for_user(*, user: Any, action_id: int) -> BulkAction | None:
    found: BulkAction | None = (
        BulkAction.objects.filter(id=action_id, application__in=applications_for_user(user=user))
        .select_related("application")
        .first()
    )
    return found


def bulk_actions_recent(
    *, application: Application, within: timedelta = timedelta(minutes=10)
) -> list[BulkProgress]:
    """The application's bulk actions still running or finished a moment ago, for the runs
    page's note above the table."""
    since = timezone.now() - within
    actions = BulkAction.objects.filter(application=application).filter(
        Q(state=BulkActionState.RUNNING) | Q(finished_at__gte=since)
    )
    return [bulk_progress(action=action) for action in actions.order_by("-created_at")[:3]]


def bulk_items_refused(*, action: BulkAction, limit: int = 100) -> list[BulkActionItem]:
    return list(action.items.filter(outcome=BulkItemOutcome.REFUSED)[:limit])


# --- Workers and queues -----------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerView:
    hostname: str
    last_seen: datetime
    alive: bool
    running: int  # runs STARTED on it, of the applications the viewer may see
    queues: list[str] | None = None  # None: it has not said (a heartbeat from an older version)
    concurrency: int | None = None
    answered: bool = False  # it answered just now when asked; else as of its last heartbeat


@dataclass(frozen=True)
class QueueView:
    name: str
    depth: int | None  # messages waiting in the broker; None when it could not be read
    consumers: int | None  # live handlers consuming it, by their own word; None: not known
    oldest_waiting: datetime | None  # the oldest PENDING run of the viewer's applications
    error: str = ""
    paused: QueuePause | None = None  # when and by whom, while it is paused


def workers_overview(*, user: Any, worker_lost_after: float) -> list[WorkerView]:
    """Every task handler that ever marked itself alive, with its runs in progress and what it
    said of itself in its last heartbeat; what it answers when asked now is added by
    :func:`workers_with_replies`. Live ones come first by name, so that a refresh does not
    reorder them at every heartbeat; then the silent ones, most recently heard first."""
    running = dict(
        TaskRun.objects.filter(
            status=State.STARTED, application__in=applications_for_user(user=user)
        )
        .values_list("worker")
        .annotate(count=Count("id"))
        .values_list("worker", "count")
    )
    lost_before = timezone.now() - timedelta(seconds=worker_lost_after)
    views = [
        WorkerView(
            hostname=beat.hostname,
            last_seen=beat.last_seen,
            alive=beat.last_seen >= lost_before,
            running=running.get(beat.hostname, 0),
            queues=beat.queues,
            concurrency=beat.concurrency,
        )
        for beat in WorkerHeartbeat.objects.order_by("-last_seen")
    ]
    # A stable sort: the silent ones, all keyed alike, keep their newest-first order.
    return sorted(views, key=lambda view: (not view.alive, view.hostname if view.alive else ""))


def workers_with_replies(workers: list[WorkerView], replies: dict[str, Any]) -> list[WorkerView]:
    """The handlers with what they answered when asked (hostname → {"queues", "concurrency"}),
    which is newer than their heartbeat's."""
    views = []
    for worker in workers:
        reply = replies.get(worker.hostname)
        if reply is None:
            views.append(worker)
            continue
        queues = reply.get("queues")
        concurrency = reply.get("concurrency")
        views.append(
            replace(
                worker,
                queues=worker.queues if queues is None else queues,
                concurrency=worker.concurrency if concurrency is None else concurrency,
                answered=True,
            )
        )
    return views


def queues_overview(
    *,
    user: Any,
    names: list[str],
    depths: dict[str, tuple[int, int] | str],
    handlers: list[WorkerView],
) -> list[QueueView]:
    """Each configured queue: what the broker holds (``depths``: name → (messages, consumers),
    or why it could not be read), how many live handlers say they consume it, and the oldest
    run of the viewer's applications still waiting for it.

    The broker's own consumer count is not used: Redis keeps none (it always says 0) and the
    embedded broker cannot tell either; the handlers' word holds on every broker."""
    oldest = dict(
        TaskRun.objects.filter(
            status=State.PENDING,
            queue__in=names,
            application__in=applications_for_user(user=user),
        )
        .values_list("queue")
        .annotate(oldest=Min("created_at"))
        .values_list("queue", "oldest")
    )
    alive = [handler for handler in handlers if handler.alive]
    known = all(handler.queues is not None for handler in alive)
    pauses = queue_pauses()
    views = []
    for name in names:
        depth = depths.get(name)
        views.append(
            QueueView(
                name=name,
                depth=depth[0] if isinstance(depth, tuple) else None,
                consumers=(
                    sum(1 for handler in alive if name in (handler.queues or ())) if known else None
                ),
                oldest_waiting=oldest.get(name),
                error=depth if isinstance(depth, str) else "",
                paused=pauses.get(name),
            )
        )
    return views


# --- Outcomes and durations per task -----------------------------------------------------------

FINISHED_STATES = (State.SUCCESS, State.FAILURE, State.REVOKED)
LIVE_WINDOW = timedelta(hours=2)  # recent runs may still be open: always counted from the runs


def outcomes_by_hour(
    *,
    application: Application,
    start: datetime,
    end: datetime,
    task_names: list[str] | None = None,
) -> dict[tuple[str, datetime], Outcomes]:
    """Finished runs sent in [start, end), by task and hour (the runs page's index)."""
    runs = TaskRun.objects.filter(
        application=application,
        created_at__gte=start,
        created_at__lt=end,
        status__in=FINISHED_STATES,
    )
    if task_names is not None:
        runs = runs.filter(task_name__in=task_names)
    summed: dict[tuple[str, datetime], Outcomes] = {}
    rows = runs.values_list("task_name", "created_at", "status", "started_at", "finished_at")
    for task_name, created_at, status, started_at, finished_at in rows.iterator(chunk_size=5000):
        seconds = (finished_at - started_at).total_seconds() if started_at and finished_at else None
        key = (task_name, floor_hour(created_at))
        summed.setdefault(key, Outcomes()).add_run(status, seconds)
    return summed


@dataclass(frozen=True)
class TaskStats:
    day: Outcomes
    week: Outcomes


def _windows(application: Application, now: datetime) -> tuple[datetime, datetime, datetime]:
    """Where the week and the day start, and up to where hourly rows count (after that, the
    runs themselves: the last two hours, or more while the rollup catches up)."""
    week_start = floor_hour(now - timedelta(days=7))
    day_start = floor_hour(now - timedelta(hours=24))
    rolled_through = max(
        min(application.stats_through or week_start, floor_hour(now - LIVE_WINDOW)), week_start
    )
    return week_start, day_start, rolled_through


def task_stats(
    *,
    application: Application,
    task_names: list[str],
    now: datetime | None = None,
    day_durations: bool = True,
) -> dict[str, TaskStats]:
    """Outcomes over the last 24 hours and 7 days, per task: the hourly rows the task handlers
    rolled up, added up by the database in one grouped query, and the runs of the hours not
    rolled up yet. Without ``day_durations`` the last 24 hours are counted but their durations
    are not added up (the task list shows the week's)."""
    now = now or timezone.now()
    week_start, day_start, rolled_through = _windows(application, now)
    in_day = Q(hour__gte=day_start)
    counts = ("succeeded", "failed", "other")
    sums: dict[str, Any] = {}
    for column in (*counts, *DURATION_COLUMNS):
        sums[f"week_{column}"] = Sum(column)
        if day_durations or column in counts:
            sums[f"day_{column}"] = Sum(column, filter=in_day)
    rows = (
        TaskStatsHour.objects.filter(
            application=application,
            task_name__in=task_names,
            hour__gte=week_start,
            hour__lt=rolled_through,
        )
        .values("task_name")
        .annotate(**sums)
    )
    stats = {name: TaskStats(day=Outcomes(), week=Outcomes()) for name in task_names}
    summed: Any
    for summed in rows:
        row: dict[str, Any] = dict(summed)
        for window in ("day", "week"):
            getattr(stats[row["task_name"]], window).add(
                Outcomes.from_row(
                    row[f"{window}_succeeded"] or 0,
                    row[f"{window}_failed"] or 0,
                    row[f"{window}_other"] or 0,
                    [row.get(f"{window}_{column}") or 0 for column in DURATION_COLUMNS],
                )
            )
    live = outcomes_by_hour(
        application=application, start=rolled_through, end=now, task_names=task_names
    )
    for (name, hour), outcomes in live.items():
        stats[name].week.add(outcomes)
        if hour >= day_start:
            stats[name].day.add(outcomes)
    return stats


def task_hours(
    *, application: Application, task_name: str, now: datetime | None = None
) -> list[tuple[datetime, Outcomes]]:
    """One task's outcomes hour by hour over the last 7 days, oldest first, for its chart."""
    now = now or timezone.now()
    week_start, _, rolled_through = _windows(application, now)
    by_hour = {
        row[0]: Outcomes.from_row(row[1], row[2], row[3], row[4:])
        for row in TaskStatsHour.objects.filter(
            application=application,
            task_name=task_name,
            hour__gte=week_start,
            hour__lt=rolled_through,
        ).values_list("hour", "succeeded", "failed", "other", *DURATION_COLUMNS)
    }
    live = outcomes_by_hour(
        application=application, start=rolled_through, end=now, task_names=[task_name]
    )
    by_hour.update({hour: outcomes for (_, hour), outcomes in live.items()})
    return [(hour, by_hour.get(hour) or Outcomes()) for hour in hours_between(week_start, now)]


def stats_of_hours(
    hours: list[tuple[datetime, Outcomes]], *, now: datetime | None = None
) -> TaskStats:
    """The last 24 hours and 7 days of an hourly series (:func:`task_hours`), added up."""
    day_start = floor_hour((now or timezone.now()) - timedelta(hours=24))
    day, week = Outcomes(), Outcomes()
    for hour, outcomes in hours:
        week.add(outcomes)
        if hour >= day_start:
            day.add(outcomes)
    return TaskStats(day=day, week=week)


# --- Paused queues -----------------------------------------------------------------------------


def queue_pauses() -> dict[str, QueuePause]:
    """Every paused queue by name, with when and by whom."""
    paused = QueuePause.objects.filter(resumed_at__isnull=True).order_by("queue")
    return {pause.queue: pause for pause in paused}


def paused_queue_names() -> set[str]:
    """What a task handler asks every second or so: one small read."""
    return set(QueuePause.objects.filter(resumed_at__isnull=True).values_list("queue", flat=True))


# --- The Schedules tab ------------------------------------------------------------------------


def _periodic_tasks() -> QuerySet[PeriodicTask]:
    rows: QuerySet[PeriodicTask] = PeriodicTask.objects.select_related(
        "crontab", "interval", "solar", "clocked", "declaration", "pause"
    ).order_by("name")
    return rows


def application_periodic_tasks(*, application: Application) -> list[PeriodicTask]:
    """Every schedule of the application: declared in code for it, or added in the admin with
    its name in the headers (the worker reads the application from them)."""
    declared = list(_periodic_tasks().filter(declaration__application=application))
    # The headers are text: narrow by the name in quotes, then read them to be sure.
    added = [
        periodic
        for periodic in _periodic_tasks().filter(
            declaration__isnull=True, headers__contains=f'"{application.name}"'
        )
        if periodic_headers(periodic).get(headers.APPLICATION) == application.name
    ]
    return sorted([*declared, *added], key=lambda periodic: periodic.name)


def application_periodic_task(*, application: Application, schedule_id: int) -> PeriodicTask | None:
    """One schedule of the application; None for another application's or a missing one."""
    return next(
        (p for p in application_periodic_tasks(application=application) if p.pk == schedule_id),
        None,
    )


def last_scheduled_runs(*, application: Application, task_names: set[str]) -> dict[str, TaskRun]:
    """Each task's latest scheduled run (Run now included), one indexed read per task."""
    found = {}
    for task_name in sorted(task_names):
        run = (
            TaskRun.objects.filter(
                application=application, task_name=task_name, origin=Origin.SCHEDULE
            )
            .order_by("-created_at")
            .first()
        )
        if run is not None:
            found[task_name] = run
    return found


def application_schedule(*, application: Application, periodic: PeriodicTask) -> ScheduleRow:
    """One schedule's row, as the tab shows it (after a pause or resume, in the API)."""
    last = last_scheduled_runs(application=application, task_names={periodic.task})
    return schedule_row(
        periodic, application=application, last_run=last.get(periodic.task), now=timezone.now()
    )


def application_schedules(*, application: Application) -> list[ScheduleRow]:
    """The Schedules tab's rows: each schedule with its next runs and its last run."""
    periodics = application_periodic_tasks(application=application)
    last_runs = last_scheduled_runs(application=application, task_names={p.task for p in periodics})
    now = timezone.now()
    return [
        schedule_row(p, application=application, last_run=last_runs.get(p.task), now=now)
        for p in periodics
    ]
