"""Bad input gets a clear refusal, never a 500 and never a recorded run; tokens and sessions
answer as they should."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

import lime_task
from limepkg_task_starter.models import Application, AuditEntry, TaskRun
from limepkg_task_starter.services.tokens import api_token_create
from tests.limepkg_task_starter.conftest import DUMMY, make_user

SLOW = "solution_demo.tasks.my_tasks.slow_report"  # steps: int, seconds_per_step: float
TASK_PAGE = f"/admin/task-starter/demo/tasks/{SLOW}/"
API_START = f"/api/v1/applications/demo/tasks/{SLOW}/runs"
DEEP = "[" * 3000 + "]" * 3000


@pytest.fixture
def demo(pages_application: Application) -> Application:
    pages_application.config["limepkg_task_starter"]["tasks"].append(SLOW)
    pages_application.save()
    return pages_application


@pytest.fixture
def starter(demo: Application) -> Client:
    client = Client()
    client.force_login(make_user("starter", perms=("view", "start"), applications=(demo,)))
    return client


def assert_nothing_recorded() -> None:
    assert not TaskRun.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    "text",
    [
        '{"steps": 1, "seconds_per_step": NaN}',
        '{"steps": 1, "seconds_per_step": Infinity}',
        '{"steps": 1, "seconds_per_step": -Infinity}',
        '{"steps": 1, "seconds_per_step": 1e400}',
        '{"steps": ' + "9" * 5000 + "}",
        '{"steps": 1, "seconds_per_step": ' + DEEP + "}",
        '{"steps": 1, "text": "x\\ud800y"}',
        '{"steps": "x\\udfff"}',
    ],
)
def test_the_page_refuses_json_it_cannot_keep(starter: Client, text: str) -> None:
    response = starter.post(TASK_PAGE, {"arguments": text, "run_as": "self"})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    assert_nothing_recorded()


@pytest.mark.parametrize(
    "body",
    [
        '{"arguments": {"steps": 1, "seconds_per_step": NaN}}',
        '{"arguments": {"steps": 1, "seconds_per_step": Infinity}}',
        '{"arguments": {"steps": 1, "seconds_per_step": 1e400}}',
        '{"arguments": {"steps": ' + "9" * 5000 + "}}",
        '{"arguments": {"steps": 1, "seconds_per_step": ' + DEEP + "}}",
        '{"arguments": {"steps": "x\\ud800y"}}',
        "[1, 2]",
        '"x"',
        "null",
        "{not json",
    ],
)
def test_the_api_refuses_bodies_it_cannot_keep(starter: Client, body: str) -> None:
    response = starter.post(API_START, body, content_type="application/json")
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert_nothing_recorded()


def test_the_api_answers_404_for_an_exposed_name_that_is_no_task(
    demo: Application, starter: Client
) -> None:
    demo.config["limepkg_task_starter"]["tasks"].append("solution_demo.tasks.gone")
    demo.save()
    response = starter.post(
        "/api/v1/applications/demo/tasks/solution_demo.tasks.gone/runs",
        {"arguments": {}},
        content_type="application/json",
    )
    assert response.status_code == 404
    assert "not a registered @task" in response.json()["detail"]
    assert_nothing_recorded()


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic eDp5"])
def test_a_post_without_valid_credentials_is_unauthorised(
    demo: Application, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    client = Client(enforce_csrf_checks=True, headers=headers)
    response = client.post(API_START, {"arguments": {}}, content_type="application/json")
    assert response.status_code == 401
    assert_nothing_recorded()


def test_a_token_of_a_non_staff_user_is_unauthorised(demo: Application) -> None:
    user = make_user("robot", staff=False, perms=("view", "start"), applications=(demo,))
    _, key = api_token_create(user=user, name="ci")
    client = Client(headers={"Authorization": f"Bearer {key}"})
    assert client.post(API_START, {}, content_type="application/json").status_code == 401


def test_run_again_on_a_run_sent_from_code_keeps_its_arguments(
    demo: Application, starter: Client
) -> None:
    sent = lime_task.send_task(DUMMY, lime_task.LimeApplication("demo", user_name="starter"), 7, 99)
    response = starter.post(f"/admin/task-starter/runs/{sent.id}/rerun/")
    assert response.status_code == 302
    rerun = TaskRun.objects.exclude(id=sent.id).get()
    assert (rerun.arguments, rerun.kwargs) == (
        {"number": 7, "numberx": 99},
        {"number": 7, "numberx": 99},
    )


def test_the_secret_key_file_is_created_readable_by_its_owner_only(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    subprocess.run(
        [sys.executable, "-c", "import taskstarter.settings"],
        env={**environment, "TASKSTARTER_VAR_DIR": str(tmp_path)},
        check=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600
    assert len((tmp_path / "secret_key").read_text().strip()) >= 50


def test_json_in_the_page_is_kept_when_refused(starter: Client) -> None:
    text = json.dumps({"steps": "many"})
    response = starter.post(TASK_PAGE, {"arguments": text, "run_as": "self"})
    assert response.status_code == 400
    assert "steps: Input should be a valid integer" in response.content.decode()


@pytest.mark.parametrize("name", ["bad name", "a/b", "runs", "workers", "é", "x\n"])
def test_the_database_refuses_an_application_name_that_is_no_free_slug(db: None, name: str) -> None:
    """Made by code or a data import, past the form: it would break every page's address."""
    with pytest.raises(IntegrityError), transaction.atomic():
        Application.objects.create(name=name, config={})
    Application.objects.create(name="fine-name_2", config={})


def test_the_slug_migration_names_the_rows_in_its_way(db: None) -> None:
    """Rows made before the constraint (here: with it taken away for the test's transaction)
    are named by the migration that adds it, rather than a bare constraint violation."""
    from importlib import import_module

    from django.apps import apps
    from django.db import connection

    if connection.vendor == "sqlite":
        pytest.skip("SQLite cannot change a table's constraints inside the test's transaction")
    migration = import_module(
        "limepkg_task_starter.migrations.0008_application_name_is_a_free_slug"
    )
    constraint = next(
        c for c in Application._meta.constraints if c.name == "application_name_is_a_free_slug"
    )
    with transaction.atomic():
        with connection.schema_editor() as editor:
            editor.remove_constraint(Application, constraint)
        for name in ("bad name", "fine", "runs"):
            Application.objects.create(name=name, config={})
        with pytest.raises(RuntimeError) as refused:
            migration.refuse_offending_names(apps, None)
        transaction.set_rollback(True)  # the constraint is back
    assert "names are not slugs or are reserved" in str(refused.value)
    assert "'bad name', 'runs'. Rename them" in str(refused.value)
