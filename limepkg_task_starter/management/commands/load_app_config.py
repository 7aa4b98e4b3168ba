from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from limepkg_task_starter.models import Application
from limepkg_task_starter.services.applications import applications_import


class Command(BaseCommand):
    help = (
        "Create or update applications from a Lime-style YAML application config. An existing "
        "application's config is replaced by the file's, unless --merge is given."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="YAML file: {app_name: {config: {...}}}")
        parser.add_argument(
            "--merge",
            action="store_true",
            help="Lay the file's keys over each existing config instead of replacing it: "
            "mappings merge key by key, lists and values are replaced.",
        )

    def handle(self, *args: Any, file: Path, merge: bool, **options: Any) -> None:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        if not isinstance(data, dict):
            raise CommandError(f"{file}: expected a mapping of application names to configs")
        existing = set(
            Application.objects.filter(name__in=map(str, data)).values_list("name", flat=True)
        )
        try:
            applications = applications_import(data=data, merge=merge)
        except ValueError as error:
            raise CommandError(f"{file}: {error}") from error
        for application in applications:
            if application.name not in existing:
                done = "Created"
            else:
                done = "Merged into the config of" if merge else "Replaced the config of"
            self.stdout.write(f"{done} application {application.name}")
