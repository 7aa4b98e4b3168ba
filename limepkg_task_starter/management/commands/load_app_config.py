from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from limepkg_task_starter.services.applications import applications_import


class Command(BaseCommand):
    help = "Create or update applications from a Lime-style YAML application config."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="YAML file: {app_name: {config: {...}}}")

    def handle(self, *args: Any, file: Path, **options: Any) -> None:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise CommandError(f"Cannot read {file}: {error}") from error
        if not isinstance(data, dict):
            raise CommandError(f"{file}: expected a mapping of application names to configs")
        try:
            applications = applications_import(data=data)
        except ValueError as error:
            raise CommandError(f"{file}: {error}") from error
        for application in applications:
            self.stdout.write(f"Loaded application {application.name}")
