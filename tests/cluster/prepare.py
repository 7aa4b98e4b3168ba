"""Run on the cluster's web host once its database is migrated: an operator, an API token, the
application and a schedule every second. Prints the token's key."""

from __future__ import annotations

import json
import os
import sys

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskstarter.settings")
    django.setup()

    from django.contrib.auth import get_user_model
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from lime_task import headers
    from limepkg_task_starter.services.applications import applications_import
    from limepkg_task_starter.services.tokens import api_token_create

    application_name = sys.argv[1]
    tasks = "tests.cluster.solution.tasks.cluster_tasks"
    applications_import(
        data={
            application_name: {
                "config": {
                    "limepkg_task_starter": {
                        "tasks": [
                            f"{tasks}.{name}" for name in ("quick", "long_early", "long_late")
                        ]
                    }
                }
            }
        }
    )
    operator = get_user_model().objects.create_superuser("operator", "operator@example.com", None)
    _, key = api_token_create(user=operator, name="cluster test")
    every_second, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(
        name="cluster tick",
        task=f"{tasks}.tick",
        interval=every_second,
        enabled=True,  # dispatched once the scheduler test starts the schedulers
        headers=json.dumps({headers.APPLICATION: application_name, headers.USER: "operator"}),
    )
    print(json.dumps({"token": key}))


if __name__ == "__main__":
    main()
