from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from limepkg_task_starter.models import Application
from tests.support.server import ProductionServer, start_production_server

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


@pytest.fixture(scope="session")
def production_server(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProductionServer]:
    """The pages as deployed: gunicorn, DEBUG off, static files collected and served by
    WhiteNoise, on the test database."""
    with django_db_blocker.unblock():
        server = start_production_server(tmp_path_factory.mktemp("production"))
    yield server
    server.stop()


@pytest.fixture
def csp_violations(page: Any) -> list[str]:
    """Content-Security-Policy violations the pages report, collected in the browser."""
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    return []


def read_csp_violations(page: Any) -> list[str]:
    found: list[str] = page.evaluate("window.__csp || []")
    return found


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


def log_in(page: Any, server: Any, username: str) -> None:
    page.goto(f"{server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server.url}/admin/")
