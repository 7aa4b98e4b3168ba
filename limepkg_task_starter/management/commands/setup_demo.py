from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from limepkg_task_starter.models import Application

IMPERSONATION_USER = "integration-user"


class Command(BaseCommand):
    help = (
        "Prepare the embedded demo: an 'admin' superuser with a generated password (printed "
        "when the user is created, or with --reset-password), the integration user, and the "
        "demo application (loaded when it does not exist yet, so edits to it are kept)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--app-config", type=Path, default=Path(settings.BASE_DIR) / "config" / "demo_app.yaml"
        )
        parser.add_argument(
            "--reset-password", action="store_true", help="Give the admin user a new password."
        )

    def handle(
        self, *args: Any, username: str, app_config: Path, reset_password: bool, **options: Any
    ) -> None:
        self._admin(username, reset_password)
        self._integration_user()
        self._demo_application(app_config)

    def _admin(self, username: str, reset_password: bool) -> None:
        users = get_user_model()._default_manager
        admin, created = users.get_or_create(username=username)
        admin.is_staff = admin.is_superuser = admin.is_active = True
        if created or reset_password:
            password = secrets.token_urlsafe(12)
            admin.set_password(password)
            admin.save()
            self.stdout.write(self.style.SUCCESS(f"Admin user: {username}  password: {password}"))
            return
        admin.save()
        self.stdout.write(
            f"Admin user: {username}, with the password printed when it was created "
            "(a new one: bin/start --reset-password)"
        )

    def _integration_user(self) -> None:
        integration, created = get_user_model()._default_manager.get_or_create(
            username=IMPERSONATION_USER
        )
        if created:
            integration.set_unusable_password()
            integration.save()

    def _demo_application(self, app_config: Path) -> None:
        names = yaml.safe_load(app_config.read_text(encoding="utf-8")) or {}
        kept = sorted(Application.objects.filter(name__in=names).values_list("name", flat=True))
        if kept:
            self.stdout.write(
                f"Kept application {', '.join(kept)} as it is (to load {app_config.name} again: "
                f".venv/bin/python manage.py load_app_config {app_config})"
            )
            return
        call_command("load_app_config", app_config, stdout=self.stdout)
