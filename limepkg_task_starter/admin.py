from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django_celery_results.models import GroupResult, TaskResult

from lime_task.config import InvalidApplicationConfigError, parse_application_config
from limepkg_task_starter.models import (
    ApiToken,
    Application,
    AuditEntry,
    TaskRun,
    WorkerHeartbeat,
)
from limepkg_task_starter.services.tokens import api_token_create

CONFIG_NOT_A_MAPPING = "The configuration must be a JSON object."


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Runs and heartbeats are written by the task handler; the admin only reads them."""

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
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
class ApplicationAdmin(admin.ModelAdmin[Application]):
    form = ApplicationForm
    list_display = ["name", "task_history", "impersonate_user"]
    search_fields = ["name"]
    filter_horizontal = ["members"]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # Runs refer to their application by name: it is fixed once created.
        return ["name"] if obj is not None else []


@admin.register(TaskRun)
class TaskRunAdmin(ReadOnlyAdmin):
    list_display = [
        "task_name",
        "application",
        "status",
        "origin",
        "run_as",
        "created_at",
        "started_at",
        "finished_at",
        "in_history",
    ]
    list_filter = ["status", "origin", "in_history", "application"]
    search_fields = ["id", "task_name"]
    date_hierarchy = "created_at"
    list_select_related = ["application"]
    show_full_result_count = False
    fieldsets = [
        (None, {"fields": ["id", "application", "task_name", "status", "result", "reason"]}),
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
        ("Timings", {"fields": ["created_at", "started_at", "finished_at"]}),
        (
            "Progress",
            {
                "classes": ["collapse"],
                "fields": ["progress_done", "progress_total", "progress_message"],
            },
        ),
        ("Error", {"classes": ["collapse"], "fields": ["error_type", "traceback"]}),
    ]


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyAdmin):
    list_display = ["hostname", "last_seen"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_username", "action", "application", "task_name", "run_as"]
    list_filter = ["action", "application"]
    search_fields = ["actor_username", "task_name", "run_as"]
    date_hierarchy = "created_at"

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = ["name", "user", "created_at"]
    fields = ["name", "user"]
    autocomplete_fields = ["user"]

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        token, key = api_token_create(user=obj.user, name=obj.name)
        obj.pk = token.pk
        self.message_user(
            request,
            f"The token is {key} — copy it now: it is not stored and cannot be shown again.",
        )


# django-celery-results is installed only so the benchmark can measure plain Celery with it; the
# run history is this app's TaskRun, so its models stay out of the admin.
admin.site.unregister(TaskResult)
admin.site.unregister(GroupResult)
