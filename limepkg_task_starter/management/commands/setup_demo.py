from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

IMPERSONATION_USER = "integration-user"


class Command(BaseCommand):
    help = (
        "Prepare the embedded demo: an 'admin' superuser with a newly generated password "
        "(printed), the integration user, and the demo application config."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--app-config", type=Path, default=Path(settings.BASE_DIR) / "config" / "demo_app.yaml"
        )

    def handle(self, *args: Any, username: str, app_config: Path, **options: Any) -> None:
        users = get_user_model()._default_manager
        password = secrets.token_urlsafe(12)
        admin, _ = users.get_or_create(username=username)
        admin.is_staff = admin.is_superuser = admin.is_active = True
        admin.set_password(password)
        admin.save()
        integration, created = users.get_or_create(username=IMPERSONATION_USER)
        if created:
            integration.set_unusable_password()
            integration.save()
        call_command("load_app_config", app_config, stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS(f"Admin user: {username}  password: {password}"))
