"""The documented production environment passes Django's deployment checks."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = PROJECT_DIR / "config" / "production.env.example"


def documented_environment() -> dict[str, str]:
    values = {}
    for line in PRODUCTION_ENV.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    values["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(60)  # the placeholder, filled in
    return values


def check_deploy(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=PROJECT_DIR,
        env={**kept, **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_documented_production_environment() -> None:
    checked = check_deploy(documented_environment())
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout


def test_check_deploy_catches_a_production_without_https() -> None:
    environment = documented_environment()
    environment["DJANGO_HTTPS"] = "0"
    checked = check_deploy(environment)
    assert checked.returncode != 0
    assert "SESSION_COOKIE_SECURE" in checked.stdout + checked.stderr


def test_check_deploy_fails_with_the_placeholder_secret_key() -> None:
    environment = documented_environment()
    environment["DJANGO_SECRET_KEY"] = dict(
        line.partition("=")[::2]
        for line in PRODUCTION_ENV.read_text().splitlines()
        if line.startswith("DJANGO_SECRET_KEY=")
    )["DJANGO_SECRET_KEY"]
    checked = check_deploy(environment)
    assert checked.returncode != 0
    assert "taskstarter.E001" in checked.stdout + checked.stderr


def test_check_deploy_fails_with_a_short_secret_key() -> None:
    environment = documented_environment()
    environment["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(20)
    checked = check_deploy(environment)
    assert checked.returncode != 0
    assert "taskstarter.E002" in checked.stdout + checked.stderr
