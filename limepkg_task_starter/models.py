from __future__ import annotations

import datetime
import logging
from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django_celery_beat.models import PeriodicTask

from lime_task.config import (
    ApplicationConfig,
    InvalidApplicationConfigError,
    parse_application_config,
)
from lime_task.status import COMPLETED_STATES, Origin, State
from limepkg_task_starter.stats import BUCKETS as DURATION_BUCKETS

logger = logging.getLogger(__name__)

# The PostgreSQL channel a finished run's id is announced on (see lime_task.wait_for_status).
RUN_FINISHED_CHANNEL = "lime_task_run_finished"


# The Task starter's own pages sit beside the applications' (/task-starter/<name>/).
RESERVED_APPLICATION_NAMES = frozenset({"runs", "workers", "schedules"})


# A slug, as in the pages' addresses (<slug:app_name>).
APPLICATION_NAME_PATTERN = r"^[-a-zA-Z0-9_]+\Z"
APPLICATION_NAME_REFUSED = (
    "An application name is letters, digits, hyphens and underscores, and not the name of a "
    "Task starter page."
)


def validate_application_name(name: str) -> None:
    if name in RESERVED_APPLICATION_NAMES:
        raise ValidationError(f"“{name}” is the name of a Task starter page; choose another.")


class Application(models.Model):
    """A Lime application: its configuration decides which tasks it exposes and how."""

    name = models.SlugField(
        "name",
        max_length=100,
        unique=True,
        validators=[validate_application_name],
        help_text="The application name tasks are sent for.",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="task_applications",
        verbose_name="members",
        help_text="Staff who may use this application's Task starter (superusers always may).",
    )
    config = models.JSONField(
        "configuration",
        default=dict,
        blank=True,
        help_text="The application's config mapping, as under <code>config:</code> in the YAML "
        "application config (for example <code>limepkg_task_starter: {task_history: 20}</code>).",
    )

    schedules_problem = models.TextField(
        "schedules not synced",
        blank=True,
        editable=False,
        help_text="What the last schedule sync could not do for this application (empty: all "
        "its declared schedules are in place). The other applications' schedules still run.",
    )

    stats_through = models.DateTimeField(
        "statistics through",
        null=True,
        blank=True,
        editable=False,
        help_text="Runs sent before this hour are counted in the hourly statistics.",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "application"
        constraints = [
            # The name is in every page's address: a row made by code or a data import, past
            # the form, must still be a slug, or the Task starter index fails for everyone.
            models.CheckConstraint(
                condition=Q(name__regex=APPLICATION_NAME_PATTERN)
                & ~Q(name__in=sorted(RESERVED_APPLICATION_NAMES)),
                name="application_name_is_a_free_slug",
                violation_error_message=APPLICATION_NAME_REFUSED,
            )
        ]

    def __str__(self) -> str:
        return self.name

    @cached_property
    def typed_config(self) -> ApplicationConfig:
        """The config, checked and typed. The admin and ``load_app_config`` refuse a bad one;
        a row that was stored bad reads as the defaults (it exposes no tasks)."""
        try:
            return parse_application_config(self.config)
        except InvalidApplicationConfigError:
            logger.exception("Application %s has an invalid config; using the defaults", self.name)
            return ApplicationConfig()

    @property
    def task_history(self) -> int:
        return self.typed_config.limepkg_task_starter.task_history

    @property
    def exposed_tasks(self) -> list[str]:
        return self.typed_config.limepkg_task_starter.tasks

    @property
    def impersonate_user(self) -> str:
        return self.typed_config.limepkg_task_starter.impersonate_user

    @property
    def language(self) -> str:
        return self.typed_config.language


class TaskRun(models.Model):
    """One run of a task: recorded when it is sent, updated by the worker that runs it."""

    id = models.CharField("task id", max_length=64, primary_key=True)
    # Keyed by name, so sending and reading a status need no lookup of the application row.
    application = models.ForeignKey(
        Application,
        on_delete=models.CASCADE,
        to_field="name",
        db_column="application_name",
        related_name="runs",
        verbose_name="application",
    )
    task_name = models.CharField("task", max_length=255, help_text="The task's full import path.")
    args = models.JSONField("positional arguments", default=list, blank=True)
    kwargs = models.JSONField("keyword arguments", default=dict, blank=True)
    arguments = models.JSONField(
        "arguments",
        null=True,
        blank=True,
        help_text="The arguments by name, as the history shows them and a rerun sends them.",
    )
    status = models.CharField(
        "status",
        max_length=16,
        choices=[(s.value, s.value.title()) for s in State],
        default=State.PENDING,
    )
    result = models.JSONField("result", null=True, blank=True)
    error_type = models.CharField("error type", max_length=255, blank=True)
    error_message = models.TextField(
        "error message",
        blank=True,
        help_text="What the exception said: shown to everyone who may see the run (the "
        "traceback needs its own permission).",
    )
    traceback = models.TextField("traceback", blank=True)
    reason = models.TextField(
        "reason",
        blank=True,
        help_text="Why the run ended as it did when the task itself did not say: not sent, "
        "worker lost, never picked up, time limit.",
    )
    sent = models.BooleanField("sent", default=True, help_text="Whether the broker took it.")
    skipped = models.BooleanField(
        "skipped",
        default=False,
        help_text="A scheduled run that did nothing: the task is disabled in the application "
        "configuration.",
    )
    origin = models.CharField(
        "origin",
        max_length=16,
        choices=[(origin.value, origin.label) for origin in Origin],
        default=Origin.CODE,
    )
    in_history = models.BooleanField(
        "in history",
        default=False,
        help_text="Shown in the Task starter history (the latest N per task and application).",
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="started by",
    )
    run_as = models.CharField("run as", max_length=150, blank=True)
    language = models.CharField("language", max_length=16, blank=True)
    queue = models.CharField("queue", max_length=255, blank=True)
    route_type = models.CharField("route type", max_length=32, blank=True)
    worker = models.CharField("worker", max_length=255, blank=True)
    progress_done = models.PositiveIntegerField("progress done", null=True, blank=True)
    progress_total = models.PositiveIntegerField("progress total", null=True, blank=True)
    progress_message = models.CharField("progress message", max_length=255, blank=True)
    rerun_of = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reruns",
        verbose_name="rerun of",
    )
    created_at = models.DateTimeField("sent at", db_index=False)
    started_at = models.DateTimeField("started at", null=True, blank=True)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    cancelled_at = models.DateTimeField("cancelled at", null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="cancelled by",
    )
    reconciled_at = models.DateTimeField(
        "reconciled at",
        null=True,
        blank=True,
        help_text="When the run was ended for its worker (the reason says why), not by it.",
    )
    later_reports = models.TextField(
        "later reports",
        blank=True,
        help_text="What workers reported after the run's outcome was recorded: a run ended "
        "for a lost worker that finished after all, or a message delivered twice.",
    )

    class Meta:
        verbose_name = "task run"
        permissions = [
            ("start_task", "Can start and rerun tasks"),
            ("start_task_as_impersonation_user", "Can start tasks as the impersonation user"),
            ("view_traceback", "Can see tracebacks of failed runs"),
            ("cancel_run", "Can cancel runs"),
        ]
        indexes = [
            # The history of one task in one application, newest first, and its pruning.
            models.Index(
                fields=["application", "task_name", "-created_at"],
                condition=Q(in_history=True),
                name="taskrun_history",
            ),
            # Runs that may need reconciling, and expiry.
            models.Index(
                fields=["status", "created_at"],
                condition=Q(status__in=[State.PENDING, State.STARTED]),
                name="taskrun_open",
            ),
            models.Index(fields=["created_at"], name="taskrun_created"),
            # The runs page: an application's runs newest first, by status or by task.
            models.Index(fields=["application", "-created_at"], name="taskrun_app_recent"),
            models.Index(
                fields=["application", "status", "-created_at"], name="taskrun_app_status"
            ),
            models.Index(
                fields=["application", "task_name", "-created_at"], name="taskrun_app_task"
            ),
            # And on PostgreSQL only, for the runs page's key=value search, a GIN index on
            # COALESCE(arguments, kwargs) (taskrun_arguments_search, migration 0011: SQL of
            # its own, as SQLite has no such index; see run_search).
        ]

    def __str__(self) -> str:
        return f"{self.task_name} [{self.id}]"

    @property
    def is_completed(self) -> bool:
        return self.status in COMPLETED_STATES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def latency_seconds(self) -> float | None:
        if self.started_at:
            return (self.started_at - self.created_at).total_seconds()
        return None


class RunLog(models.Model):
    """The log lines a run's task emitted while it ran, captured by its task handler
    (limepkg_task_starter.run_logs): the first and the last of them, within a size limit, with
    the number of lines dropped between. Deleted with the run."""

    run = models.OneToOneField(
        TaskRun, on_delete=models.CASCADE, primary_key=True, related_name="log"
    )
    text = models.TextField("log", blank=True)
    lines = models.PositiveIntegerField("lines logged", default=0)
    dropped = models.PositiveIntegerField(
        "lines dropped", default=0, help_text="Logged between the first and the last lines kept."
    )
    updated_at = models.DateTimeField("updated", auto_now=True)

    class Meta:
        verbose_name = "run log"

    def __str__(self) -> str:
        return f"log of {self.run_id}"


class WorkerHeartbeat(models.Model):
    """A task handler's last sign of life, so runs on a dead one can be reconciled."""

    hostname = models.CharField("worker", max_length=255, primary_key=True)
    last_seen = models.DateTimeField("last seen")
    # What the handler says of itself with each heartbeat, so the handlers page knows it on a
    # broker that cannot ask handlers (the embedded one) or when a handler does not answer.
    concurrency = models.PositiveIntegerField(
        "concurrency",
        null=True,
        blank=True,
        help_text="How many runs the task handler executes at once (its pool size).",
    )
    queues = models.JSONField(
        "queues consumed",
        null=True,
        blank=True,
        help_text="The queues the task handler consumed at its last heartbeat.",
    )

    class Meta:
        verbose_name = "worker heartbeat"

    def __str__(self) -> str:
        return self.hostname


class AuditAction(models.TextChoices):
    START = "start", "Start"
    RERUN = "rerun", "Run again"
    CANCEL = "cancel", "Cancel"
    SCHEDULE_CHANGE = "schedule_change", "Schedule change"
    QUEUE_PAUSE = "queue_pause", "Queue pause"
    QUEUE_RESUME = "queue_resume", "Queue resume"
    BULK_RETRY = "bulk_retry", "Retry all matching"
    BULK_CANCEL = "bulk_cancel", "Cancel all matching"


class AuditEntry(models.Model):
    """Who started what, as whom, with which arguments."""

    created_at = models.DateTimeField("time", auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name="actor",
    )
    actor_username = models.CharField(
        "actor username", max_length=150, help_text="Kept when the user is deleted."
    )
    action = models.CharField("action", max_length=32, choices=AuditAction.choices)
    application = models.CharField("application", max_length=100)
    task_name = models.CharField("task", max_length=255)
    run_as = models.CharField("run as", max_length=150, blank=True)
    arguments = models.JSONField("arguments", null=True, blank=True)
    run = models.ForeignKey(
        TaskRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_constraint=False,
        verbose_name="run",
    )
    detail = models.TextField("detail", blank=True)

    class Meta:
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.task_name}"


class QueuePause(models.Model):
    """A queue the task handlers do not take new runs from while ``resumed_at`` is empty.

    Stored, not only broadcast: a handler reads it at start and every second or so, so the pause
    holds on every broker, across restarts, and for handlers started later. The row stays after
    a resume: a run that waited through the pause is given ``pending_timeout`` from the resume,
    not from when it was sent, before it is called never started."""

    queue = models.CharField(
        "queue", max_length=255, primary_key=True, help_text="The broker queue's full name."
    )
    paused_at = models.DateTimeField("paused at", help_text="When it was paused.")
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name="paused by",
    )
    paused_by_username = models.CharField(
        "paused by (username)", max_length=150, help_text="Kept when the user is deleted."
    )
    resumed_at = models.DateTimeField(
        "resumed at", null=True, blank=True, help_text="Empty while the queue is paused."
    )

    class Meta:
        verbose_name = "queue pause"
        default_permissions = ("view",)
        permissions = [("pause_queue", "Can pause and resume queues")]

    def __str__(self) -> str:
        return f"{self.queue} (paused by {self.paused_by_username})"


class BulkActionKind(models.TextChoices):
    RETRY = "retry", "Retry failed runs"
    CANCEL = "cancel", "Cancel waiting runs"


class BulkActionState(models.TextChoices):
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    STOPPED = "stopped", "Stopped by an error"


class BulkAction(models.Model):
    """ "Retry all" or "Cancel all" over the runs a filter matched: the runs are fixed when it
    is confirmed (its items), then each goes through the start or cancel policy in the
    background while the page shows the progress."""

    application = models.ForeignKey(
        Application,
        on_delete=models.CASCADE,
        to_field="name",
        db_column="application_name",
        related_name="+",
        verbose_name="application",
    )
    kind = models.CharField("action", max_length=16, choices=BulkActionKind.choices)
    state = models.CharField(
        "state", max_length=16, choices=BulkActionState.choices, default=BulkActionState.RUNNING
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name="actor",
    )
    actor_username = models.CharField("actor username", max_length=150)
    filter_query = models.TextField(
        "filter", blank=True, help_text="The runs page's query string the runs were chosen by."
    )
    filter_text = models.TextField("filter in words", blank=True)
    matched = models.PositiveIntegerField(
        "matched", help_text="Runs the filter matched, counted up to one more than the cap."
    )
    created_at = models.DateTimeField("created at", auto_now_add=True)
    finished_at = models.DateTimeField("finished at", null=True, blank=True)
    # Who is working on it: a processor writes its lease with every item; a lease not renewed
    # for a while belongs to a process that stopped, and the next look at the progress takes
    # the action over.
    lease = models.CharField("lease", max_length=32, blank=True)
    heartbeat_at = models.DateTimeField("last progress", null=True, blank=True)
    error = models.TextField("error", blank=True)

    class Meta:
        verbose_name = "bulk action"
        indexes = [models.Index(fields=["application", "-created_at"], name="bulk_recent")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.filter_text or 'all runs'})"


class BulkItemOutcome(models.TextChoices):
    WAITING = "", "Waiting"
    DONE = "done", "Done"
    REFUSED = "refused", "Refused"


class BulkActionItem(models.Model):
    """One run a bulk action acts on, and what became of it."""

    bulk_action = models.ForeignKey(
        BulkAction, on_delete=models.CASCADE, related_name="items", verbose_name="bulk action"
    )
    position = models.PositiveIntegerField("position")
    # Ids, not keys: the items say what was done after the runs themselves expire.
    run_id = models.CharField("run", max_length=64)
    task_name = models.CharField("task", max_length=255)
    outcome = models.CharField(
        "outcome", max_length=16, choices=BulkItemOutcome.choices, blank=True
    )
    new_run_id = models.CharField("new run", max_length=64, blank=True)
    message = models.TextField("message", blank=True)

    class Meta:
        verbose_name = "bulk action item"
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["bulk_action", "position"], name="bulk_item_position")
        ]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.get_outcome_display()}"


class ApiToken(models.Model):
    """A bearer token for the JSON API, acting as its user. Only a hash is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="task_api_tokens",
        verbose_name="user",
    )
    name = models.CharField("name", max_length=100, help_text="What the token is for.")
    key_hash = models.CharField("key hash", max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"


class ScheduleDeclaration(models.Model):
    """A schedule declared in code, as synced into django-celery-beat for one application.

    ``declared`` is what the code said at the last sync: a cron or timezone an administrator
    changed in the admin differs from it, and the sync leaves such a change alone.
    """

    application = models.ForeignKey(
        Application,
        on_delete=models.CASCADE,
        to_field="name",
        db_column="application_name",
        related_name="schedule_declarations",
        verbose_name="application",
    )
    key = models.CharField(
        "key", max_length=255, help_text="The task's name, with #2, #3… for further schedules."
    )
    task_name = models.CharField("task", max_length=255)
    package = models.CharField("package", max_length=255, help_text="Where it is declared.")
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask",
        on_delete=models.CASCADE,
        related_name="declaration",
        verbose_name="periodic task",
    )
    declared = models.JSONField("declared schedule", default=dict)
    removed_at = models.DateTimeField(
        "removed from code",
        null=True,
        blank=True,
        help_text="Set when the code stopped declaring it: the periodic task is disabled.",
    )

    class Meta:
        verbose_name = "declared schedule"
        constraints = [
            models.UniqueConstraint(fields=["application", "key"], name="one_declaration_per_key")
        ]

    def __str__(self) -> str:
        return f"{self.application_id}: {self.key}"


@receiver(post_delete, sender=ScheduleDeclaration)
def _periodic_task_follows_its_declaration(instance: ScheduleDeclaration, **_: Any) -> None:
    """A declared schedule's periodic task goes with it, in the same transaction, however the
    declaration goes (its application deleted in the admin, in bulk or from code): left behind,
    beat would fire it for an application that no longer exists, and its name would block the
    schedule of a new application of the same name."""
    PeriodicTask.objects.filter(id=instance.periodic_task_id).delete()


class SchedulerLock(models.Model):
    """Who may dispatch scheduled tasks: one scheduler holds the lease and renews it."""

    name = models.CharField("name", max_length=64, primary_key=True)
    holder = models.CharField("holder", max_length=255)
    expires_at = models.DateTimeField("expires at")

    class Meta:
        verbose_name = "scheduler lock"

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder}"


class TaskStatsHour(models.Model):
    """One task's finished runs in one application in one hour: outcomes and a histogram of
    durations. The task handlers roll closed hours up (services.stats), so the pages add up a
    few hundred small rows instead of aggregating the run table."""

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    task_name = models.CharField("task", max_length=255)
    hour = models.DateTimeField("hour")
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    other = models.PositiveIntegerField(default=0, help_text="Revoked, cancelled or skipped.")
    # Runs per duration bucket (limepkg_task_starter.stats), one column each, so that the
    # database adds any number of hours up: d0 … d43, added below the class.

    class Meta:
        verbose_name = "hourly task statistics"
        verbose_name_plural = "hourly task statistics"
        constraints = [
            models.UniqueConstraint(
                fields=["application", "task_name", "hour"], name="taskstats_one_per_hour"
            )
        ]
        indexes = [models.Index(fields=["application", "hour"], name="taskstats_recent")]

    def __str__(self) -> str:
        return f"{self.task_name} at {self.hour:%Y-%m-%d %H}:00"


DURATION_COLUMNS = tuple(f"d{index}" for index in range(DURATION_BUCKETS))
for _column in DURATION_COLUMNS:
    TaskStatsHour.add_to_class(_column, models.PositiveIntegerField(default=0))


class SchedulePause(models.Model):
    """A schedule held back by a person: the scheduler skips its ticks while the pause lasts.

    One row per paused periodic task, declared in code or added in the admin. Resuming deletes
    it; a pause with ``until`` ends by itself then (the row stays until the next pause or
    resume, and reads as over). Kept apart from ``enabled``, which stays the administrator's.
    """

    periodic_task = models.OneToOneField(
        PeriodicTask,
        on_delete=models.CASCADE,
        related_name="pause",
        verbose_name="periodic task",
    )
    paused_at = models.DateTimeField("paused at")
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="paused by",
    )
    paused_by_username = models.CharField(
        "paused by (username)", max_length=150, help_text="Kept when the user is deleted."
    )
    until = models.DateTimeField(
        "until",
        null=True,
        blank=True,
        help_text="When the pause ends by itself; empty: until someone resumes it.",
    )

    class Meta:
        verbose_name = "schedule pause"
        permissions = [("pause_schedule", "Can pause and resume schedules")]

    def __str__(self) -> str:
        return f"{self.periodic_task_id} paused by {self.paused_by_username}"

    def in_force(self, now: datetime.datetime) -> bool:
        return self.until is None or now < self.until
