from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from lime_task.registry import load_scheduled_tasks
from limepkg_task_starter.schedule_sync import schedule_sync


class Command(BaseCommand):
    help = "Write the schedules the solution packages declare into the database, per application."

    def handle(self, *args: Any, **options: Any) -> None:
        report = schedule_sync(declared=load_scheduled_tasks(settings.LIME_PACKAGES))
        self.stdout.write(
            f"{report.created} created, {report.updated} updated, {report.removed} removed"
        )
        if report.errors:
            raise CommandError("\n".join(report.errors))
