from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from limepkg_task_starter.models import Application

# Playwright's sync API runs an event loop in this thread; the Django calls the tests make
# between page actions are ordinary synchronous ones.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "a-browser-test-password"
TASKS = ["solution_demo.tasks.my_tasks.dummy_task", "solution_demo.tasks.my_tasks.example_task"]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, never a downloaded browser."""
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


@pytest.fixture
def demo_site(transactional_db: None) -> Application:
    User.objects.create_user("integration-user")
    return Application.objects.create(
        name="demo",
        config={"limepkg_task_starter": {"impersonate_user": "integration-user", "tasks": TASKS}},
    )


def staff_user(username: str, application: Application, *codenames: str) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    application.members.add(user)
    return user


def log_in(page: Any, live_server: Any, username: str) -> None:
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
