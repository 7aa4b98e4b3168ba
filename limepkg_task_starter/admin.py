"""The admin of the app's models, and of django-celery-beat's schedules, under the same rules as
the Task starter pages: a staff member sees the rows of the applications they are a member of
(superusers see all), tracebacks need their own permission, and nothing here starts a task or
acts as another user except through the start policy (``services.starting``).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django_celery_beat.admin import CrontabScheduleAdmin as StockCrontabScheduleAdmin
from django_celery_beat.admin import PeriodicTaskAdmin as StockPeriodicTaskAdmin
from django_celery_beat.admin import PeriodicTaskForm as StockPeriodicTaskForm
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_results.models import GroupResult, TaskResult

from lime_task import headers
from lime_task.config import InvalidApplicationConfigError, parse_application_config
from limepkg_task_starter import selectors
from limepkg_task_starter.models import (
    ApiToken,
    Application,
    AuditEntry,
    BulkAction,
    BulkActionItem,
    ScheduleDeclaration,
    TaskRun,
    WorkerHeartbeat,
)
from limepkg_task_starter.permissions import VIEW_TRACEBACK
from limepkg_task_starter.refusals import REFUSALS, refusal_messages
from limepkg_task_starter.schedule_summary import periodic_headers
from limepkg_task_starter.services import starting
from limepkg_task_starter.services.schedules import schedule_change_audit, schedules_set_enabled
from limepkg_task_starter.services.tokens import api_token_create

CONFIG_NOT_A_MAPPING = "The configuration must be a JSON object."
# Where save_model leaves a new token's key for response_add, on the unsaved-to-disk instance.
NEW_KEY = "_plaintext_key"
NOT_DECLARED = (
    "{name} names none of your applications (declared in code, or lime_application in its "
    "headers): it is not run from here."
)
RAN_NOW = "Started {task} as {user}."
REFUSED = "{name}: {why}"
SCHEDULES_CHANGED = "{count} schedule(s) changed."


class MembershipAdmin(admin.ModelAdmin[Any]):
    """Only the rows of the person's applications; ``application_path`` leads to their name."""

    application_path: str = "application"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        rows = super().get_queryset(request)
        if request.user.is_superuser:
            return rows
        names = selectors.applications_for_user(user=request.user).values("name")
        return rows.filter(**{f"{self.application_path}__in": names})


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Runs, audit entries and heartbeats are written by the product; the admin only reads."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ApplicationForm(forms.ModelForm[Application]):
    class Meta:
        model = Application
        fields = ["name", "members", "config"]

    def clean_config(self) -> Any:
        config = self.cleaned_data["config"]
        if not isinstance(config, dict):
            raise forms.ValidationError(CONFIG_NOT_A_MAPPING)
        try:
            parse_application_config(config)
        except InvalidApplicationConfigError as error:
            raise forms.ValidationError(error.messages) from error
        return config


@admin.register(Application)
class ApplicationAdmin(MembershipAdmin):
    form = ApplicationForm
    application_path = "name"
    list_display = ["name", "task_history", "impersonate_user", "schedules_synced"]
    search_fields = ["name"]
    filter_horizontal = ["members"]

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # Runs refer to their application by name: it is fixed once created.
        return ["name", "schedules_problem"] if obj is not None else []

    @admin.display(description="schedules synced", boolean=True)
    def schedules_synced(self, obj: Application) -> bool:
        return not obj.schedules_problem

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new application has no members: only a superuser would ever see it again.
        return bool(request.user.is_superuser)


@admin.register(TaskRun)
class TaskRunAdmin(MembershipAdmin, ReadOnlyAdmin):
    list_display = [
        "task_name",
        "application",
        "status",
        "view_info",
        "origin",
        "run_as",
        "created_at",
        "started_at",
        "finished_at",
        "in_history",
    ]
    list_filter = [
        "status",
        "origin",
        "in_history",
        ("application", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["id", "task_name"]
    date_hierarchy = "created_at"
    list_select_related = ["application"]
    show_full_result_count = False
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "application",
                    "task_name",
                    "status",
                    "result",
                    "reason",
                    "later_reports",
                ]
            },
        ),
        ("Arguments", {"fields": ["arguments", "args", "kwargs"]}),
        (
            "Who and where",
            {
                "fields": [
                    "origin",
                    "started_by",
                    "run_as",
                    "language",
                    "queue",
                    "route_type",
                    "worker",
                    "rerun_of",
                    "in_history",
                    "sent",
                ]
            },
        ),
        ("Timings", {"fields": ["created_at", "started_at", "finished_at", "reconciled_at"]}),
        (
            "Progress",
            {
                "classes": ["collapse"],
                "fields": ["progress_done", "progress_total", "progress_message"],
            },
        ),
        ("Error", {"classes": ["collapse"], "fields": ["error_type", "traceback"]}),
    ]

    @admin.display(description="View info")
    def view_info(self, run: TaskRun) -> str:
        return _view_info_link(run.pk)

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        if request.user.has_perm(VIEW_TRACEBACK):
            return self.fieldsets
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "traceback"]})
            for name, options in self.fieldsets
        ]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["hostname", "last_seen"]


@admin.register(AuditEntry)
class AuditEntryAdmin(MembershipAdmin, ReadOnlyAdmin):
    list_display = [
        "created_at",
        "actor_username",
        "action",
        "application",
        "task_name",
        "run_as",
        "view_info",
    ]
    list_filter = ["action"]

    @admin.display(description="Run")
    def view_info(self, entry: AuditEntry) -> str:
        return _view_info_link(entry.run_id) if entry.run_id else "—"

    search_fields = ["actor_username", "task_name", "run_as"]
    date_hierarchy = "created_at"

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class BulkActionItemInline(admin.TabularInline[BulkActionItem, BulkAction]):
    model = BulkActionItem
    fields = readonly_fields = (
        "position",
        "run_id",
        "task_name",
        "outcome",
        "new_run_id",
        "message",
    )
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """Whoever may see the action sees its items: they are part of it."""
        return request.user.has_perm("limepkg_task_starter.view_bulkaction")


@admin.register(BulkAction)
class BulkActionAdmin(MembershipAdmin, ReadOnlyAdmin):
    """ "Retry all" / "Cancel all" over a filter, each with the runs it acted on and how each
    went (the Task starter's own page shows its progress)."""

    list_display = ["created_at", "actor_username", "kind", "application", "state", "filter_text"]
    list_filter = ["kind", "state"]
    inlines = [BulkActionItemInline]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def _view_info_link(run_id: str) -> str:
    """Everything about a run, on the Task starter's own page."""
    return format_html(
        '<a href="{}">View info</a>',
        reverse("admin:task_starter:run_info", kwargs={"run_id": run_id}),
    )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    """A token acts as its user: a staff member makes tokens for themselves only."""

    list_display = ["name", "user", "created_at"]
    autocomplete_fields = ["user"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiToken]:
        tokens = super().get_queryset(request)
        if request.user.is_superuser:
            return tokens
        return tokens.filter(user__username=request.user.get_username())

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> Any:
        return ["name", "user"] if request.user.is_superuser else ["name"]

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: Any, change: bool) -> None:
        user = obj.user if request.user.is_superuser else request.user
        token, key = api_token_create(user=user, name=obj.name)
        obj.pk, obj.user, obj.key_hash, obj.created_at = (
            token.pk,
            token.user,
            token.key_hash,
            token.created_at,
        )
        setattr(obj, NEW_KEY, key)

    def response_add(
        self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None
    ) -> HttpResponse:
        """The new key, on the page that answers its creation, never in a message: messages
        travel in a cookie on the redirect that would follow."""
        key = getattr(obj, NEW_KEY, None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        response = TemplateResponse(
            request,
            "admin/limepkg_task_starter/apitoken/created.html",
            {
                **self.admin_site.each_context(request),
                "title": "API token created",
                "opts": self.opts,
                "token": obj,
                "key": key,
            },
        )
        response["Cache-Control"] = "no-store"
        return response


# --- django-celery-beat's schedules, under the same rules ---------------------------------------

# What code owns in a declared schedule (the sync writes it); cron, timezone and enabled stay
# the administrator's.
CODE_OWNED = (
    "name",
    "task",
    "args",
    "kwargs",
    "headers",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "expires",
    "expire_seconds",
    "one_off",
    "interval",
    "solar",
    "clocked",
    "start_time",
)


class PeriodicTaskForm(StockPeriodicTaskForm):  # type: ignore[misc]
    def clean(self) -> dict[str, Any]:
        # Beat's clean() reads the task from the form; in a declared schedule it is read-only,
        # so not a field of the form, and the row keeps the task the code declared.
        if "task" not in self.fields:
            self.cleaned_data["task"] = self.instance.task
        cleaned: dict[str, Any] = super().clean()
        return cleaned


class PeriodicTaskAdmin(MembershipAdmin, StockPeriodicTaskAdmin):  # type: ignore[misc]
    """Declared schedules of the person's applications; periodic tasks not declared in code
    (which can run any task as anyone) only for superusers."""

    form = PeriodicTaskForm
    # Beat's own template translates the crontab with an inline script, which our CSP blocks.
    change_form_template = "admin/django_celery_beat/periodictask/change_form.html"
    application_path = "declaration__application"
    actions = ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks")

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None and hasattr(obj, "declaration"):
            return (*readonly, *CODE_OWNED)
        return readonly

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not hasattr(obj, "declaration"):
            return fieldsets
        # The task picker is a form field, not the model's: with the task read-only, drop it.
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "regtask"]})
            for name, options in fieldsets
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        """A schedule declared in code says so, and links back to its task's page."""
        declaration = (
            ScheduleDeclaration.objects.filter(periodic_task_id=object_id).first()
            if str(object_id).isdigit()
            else None
        )
        if declaration is not None:
            task_page = reverse(
                "admin:task_starter:task_detail",
                kwargs={
                    "app_name": declaration.application_id,
                    "task_name": declaration.task_name,
                },
            )
            extra_context = {
                **(extra_context or {}),
                "subtitle": format_html(
                    "Declared in code: the task, its arguments and headers are read-only. "
                    '<a href="{}">Open the task page</a>',
                    task_page,
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and hasattr(obj, "declaration"):
            schedule_change_audit(actor=request.user, periodic_task=obj, changed=form.changed_data)

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._set_enabled(request, queryset, False)

    @admin.action(description="Toggle activity of selected tasks")
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self._set_enabled(request, queryset, None)

    def _set_enabled(
        self, request: HttpRequest, queryset: QuerySet[PeriodicTask], enabled: bool | None
    ) -> None:
        changed = schedules_set_enabled(
            actor=request.user, periodic_tasks=queryset, enabled=enabled
        )
        self.message_user(request, SCHEDULES_CHANGED.format(count=changed))

    @admin.action(description="Run selected tasks now (as Run now on the Schedules tab)")
    def run_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        for periodic in queryset.select_related("declaration__application"):
            application = self._application_of(request, periodic)
            if application is None:
                self.message_user(
                    request, NOT_DECLARED.format(name=periodic.name), level=messages.ERROR
                )
                continue
            try:
                run = starting.schedule_run_now(
                    actor=request.user, application=application, periodic=periodic
                )
            except REFUSALS as error:
                why = " ".join(refusal_messages(error))
                self.message_user(
                    request, REFUSED.format(name=periodic.name, why=why), level=messages.ERROR
                )
                continue
            self.message_user(request, RAN_NOW.format(task=run.task_name, user=run.run_as))

    @staticmethod
    def _application_of(request: HttpRequest, periodic: PeriodicTask) -> Application | None:
        """The application a schedule runs for, if the person is one of its members: the one
        that declared it, or the one its headers name."""
        declaration = getattr(periodic, "declaration", None)
        if declaration is not None:
            name = declaration.application_id
        else:
            name = periodic_headers(periodic).get(headers.APPLICATION)
        if not isinstance(name, str):
            return None
        return selectors.application_for_user(user=request.user, name=name)


class CrontabScheduleAdmin(StockCrontabScheduleAdmin):  # type: ignore[misc]
    """A crontab row is shared by every schedule that uses it, across applications: only a
    superuser changes or deletes one; others add a new one and pick it in their schedule."""

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, PeriodicTaskAdmin)
admin.site.unregister(CrontabSchedule)
admin.site.register(CrontabSchedule, CrontabScheduleAdmin)

# django-celery-results is installed only so the benchmark can measure plain Celery with it; the
# run history is this app's TaskRun, so its models stay out of the admin.
admin.site.unregister(TaskResult)
admin.site.unregister(GroupResult)
