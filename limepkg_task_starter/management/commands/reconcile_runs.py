from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from lime_task.config import tasks_config
from limepkg_task_starter.services.maintenance import run_reconcile


class Command(BaseCommand):
    help = "End runs left PENDING or STARTED that can no longer finish (lost worker, lost message)."

    def handle(self, *args: Any, **options: Any) -> None:
        config = tasks_config()
        reconciled = run_reconcile(
            worker_lost_after=config.worker_lost_after, pending_timeout=config.pending_timeout
        )
        self.stdout.write(
            f"{reconciled.worker_lost} runs on lost workers, "
            f"{reconciled.never_started} never started"
        )
