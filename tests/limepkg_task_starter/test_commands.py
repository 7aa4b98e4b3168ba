from __future__ import annotations

import os
import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.management import CommandError, call_command
from django.test import override_settings

from lime_task.config import TasksConfig
from limepkg_task_starter.management.commands.runall import static_sources_fingerprint
from limepkg_task_starter.management.commands.taskhandler import worker_argv
from limepkg_task_starter.models import Application

# The application config block of the Task starter reference.
REFERENCE_APP_CONFIG = """\
lisa_application_name:
    config:
        limepkg_task_starter:
            task_history: 20
"""


@pytest.mark.django_db
def test_load_app_config_reads_the_reference_block(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(REFERENCE_APP_CONFIG)
    call_command("load_app_config", path, stdout=StringIO())

    application = Application.objects.get(name="lisa_application_name")
    assert application.task_history == 20


@pytest.mark.django_db
def test_load_app_config_updates_in_place(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(REFERENCE_APP_CONFIG)
    call_command("load_app_config", path, stdout=StringIO())
    path.write_text(REFERENCE_APP_CONFIG.replace("20", "30"))
    call_command("load_app_config", path, stdout=StringIO())
    assert Application.objects.get().task_history == 30


DISABLE_A_SCHEDULE = """\
lisa_application_name:
  config:
    scheduled_tasks:
      my_solution.tasks.my_tasks.my_special_task:
        enabled: false
"""


@pytest.mark.django_db
def test_load_app_config_says_it_replaces_and_merge_keeps_the_rest(tmp_path: Path) -> None:
    full, change = tmp_path / "app.yaml", tmp_path / "disable.yaml"
    full.write_text(REFERENCE_APP_CONFIG)
    change.write_text(DISABLE_A_SCHEDULE)
    out = StringIO()
    call_command("load_app_config", full, stdout=out)
    call_command("load_app_config", change, "--merge", stdout=out)
    merged = Application.objects.get().config
    assert merged["limepkg_task_starter"] == {"task_history": 20}
    assert merged["scheduled_tasks"] == {
        "my_solution.tasks.my_tasks.my_special_task": {"enabled": False}
    }

    call_command("load_app_config", change, stdout=out)
    assert "limepkg_task_starter" not in Application.objects.get().config
    assert out.getvalue().splitlines() == [
        "Created application lisa_application_name",
        "Merged into the config of application lisa_application_name",
        "Replaced the config of application lisa_application_name",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"), [("- a\n- b\n", "expected a mapping"), ("app: {config: [1]}\n", "mapping")]
)
def test_load_app_config_rejects_bad_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CommandError, match=message):
        call_command("load_app_config", path)
    assert not Application.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "good: {config: {}}\nbad: {config: {limepkg_task_starter: {task_history: -3}}}\n",
            "bad: limepkg_task_starter.task_history: Input should be greater than or equal to 1",
        ),
        ("crm.v2: {config: {}}\n", "'crm.v2' is not a valid application name"),
        ("app: {config: {timezone: Nowhere/Town}}\n", "timezone: Value error, unknown time zone"),
    ],
)
def test_load_app_config_refuses_a_bad_application_and_loads_none(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "apps.yaml"
    path.write_text(text)
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("load_app_config", path, stdout=StringIO())
    assert not Application.objects.exists()


@pytest.mark.django_db
def test_the_admin_form_refuses_a_bad_config_and_names_the_key(admin_client) -> None:
    response = admin_client.post(
        "/admin/limepkg_task_starter/application/add/",
        {"name": "crm", "config": '{"limepkg_task_starter": {"tasks": "not a list"}}'},
    )
    assert response.status_code == 200
    assert "limepkg_task_starter.tasks: Input should be a valid list" in response.content.decode()
    assert not Application.objects.exists()


def test_default_history_length_is_ten() -> None:
    assert Application(config={}).task_history == 10


def test_taskhandler_consumes_every_configured_queue_by_default(settings) -> None:
    settings.LIME_TASKS = TasksConfig()
    argv = worker_argv(["--concurrency", "4"], node_name=lambda: "handler7@%h")
    assert argv[:3] == [
        "worker",
        "--queues",
        "lime_default_task_queue,lime_task_queue_asap,lime_task_queue_background,"
        "lime_task_queue_scheduled",
    ]
    assert argv[3:] == ["--hostname", "handler7@%h", "--loglevel", "INFO", "--concurrency", "4"]


def test_taskhandler_queues_narrow_and_beat_adds_the_scheduler() -> None:
    assert worker_argv(["--queues", "a,b", "--beat", "-l", "WARNING", "-n", "w1@%h"]) == [
        "worker",
        "--queues",
        "a,b",
        "--beat",
        "--hostname",
        "w1@%h",
        "--loglevel",
        "WARNING",
    ]


def test_each_handler_on_a_host_gets_its_own_node_name_and_keeps_it(tmp_path: Path) -> None:
    # Each claim runs in a process of its own, as handlers do: the lock is per process.
    script = (
        "import sys, time, django; from pathlib import Path; django.setup();"
        "from limepkg_task_starter.management.commands.taskhandler import claim_node_name;"
        "print(claim_node_name(Path(sys.argv[1])), flush=True); time.sleep(30)"
    )

    def handler() -> tuple[subprocess.Popen[str], str]:
        process = subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "taskstarter.settings"},
        )
        assert process.stdout is not None
        return process, process.stdout.readline().strip()

    first, first_name = handler()
    second, second_name = handler()
    try:
        assert (first_name, second_name) == ("handler1@%h", "handler2@%h")
        first.kill()
        first.wait(10)
        # A restart takes the number back.
        again, again_name = handler()
        again.kill()
        assert again_name == "handler1@%h"
    finally:
        for process in (first, second):
            process.kill()
            process.wait(10)


@pytest.mark.django_db
def test_setup_demo_keeps_the_password_and_the_edited_application(tmp_path: Path) -> None:
    config = tmp_path / "demo.yaml"
    config.write_text(REFERENCE_APP_CONFIG)
    first = StringIO()
    call_command("setup_demo", "--app-config", config, stdout=first)
    password = re.search(r"password: (\S+)", first.getvalue())
    assert password is not None
    assert admin_password_is(password[1])
    Application.objects.filter(name="lisa_application_name").update(config={"language": "sv"})

    again = StringIO()
    call_command("setup_demo", "--app-config", config, stdout=again)
    assert "password:" not in again.getvalue()
    assert "Kept application lisa_application_name" in again.getvalue()
    assert admin_password_is(password[1])
    assert Application.objects.get().config == {"language": "sv"}

    reset = StringIO()
    call_command("setup_demo", "--app-config", config, "--reset-password", stdout=reset)
    new_password = re.search(r"password: (\S+)", reset.getvalue())
    assert new_password is not None and new_password[1] != password[1]
    assert not admin_password_is(password[1])
    assert admin_password_is(new_password[1])


def admin_password_is(password: str) -> bool:
    return bool(get_user_model()._default_manager.get(username="admin").check_password(password))


def test_runall_collects_again_only_when_a_static_source_changed(tmp_path: Path) -> None:
    (tmp_path / "site.css").write_text("body { color: black }")
    finders.get_finder.cache_clear()
    try:
        with override_settings(STATICFILES_DIRS=[tmp_path]):
            before = static_sources_fingerprint()
            assert static_sources_fingerprint() == before
            (tmp_path / "site.css").write_text("body { color: navy }")
            assert static_sources_fingerprint() != before
    finally:
        finders.get_finder.cache_clear()
