from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from lime_task.config import (
    DEFAULT_LANGUAGE,
    DEFAULT_QOS_QUEUES,
    ConfigError,
    InvalidApplicationConfigError,
    TasksConfig,
    load_config,
    parse_application_config,
)
from taskstarter.checks import result_backend_is_chosen

# The tasks section exactly as the task handler reference writes it (None and True included).
REFERENCE_YAML = """\
tasks:
  broker_connection_string: amqp://
  backend_connection_string: redis://localhost
  task_time_limit: None
  task_soft_time_limit: None
  task_queue_name: lime_default_task_queue
  task_exchange_name: lime_default_task_exchange
  task_routing_key_name: lime_default_routing_key
  enable_scheduled_tasks: True
  result_expires: 2592000 # 30 days in seconds
  log_message_max_size: 0
  timezone: UTC # or Europe/Stockholm etc.
  routing:
    qos:
      asap: lime_task_queue_asap
      background: lime_task_queue_background
      scheduled: lime_task_queue_scheduled
    tasks:
      my.special.task: lime_task_queue_special
features:
  importer_with_taskhandler: False
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_are_the_reference_defaults() -> None:
    config = TasksConfig()
    assert config.broker_connection_string == "amqp://"
    assert config.backend_connection_string == "redis://localhost"
    assert config.task_time_limit is None
    assert config.task_queue_name == "lime_default_task_queue"
    assert config.task_exchange_name == "lime_default_task_exchange"
    assert config.task_routing_key_name == "lime_default_routing_key"
    assert config.enable_scheduled_tasks is True
    assert config.result_expires == 2_592_000
    assert config.log_message_max_size == 0
    assert config.timezone == "UTC"
    assert config.routing.qos == DEFAULT_QOS_QUEUES
    assert config.routing.tasks == {}


def test_reference_yaml_reads_none_as_none(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "stack.yaml", REFERENCE_YAML), environ={}).tasks
    assert config.task_time_limit is None
    assert config.task_soft_time_limit is None
    assert config.routing.tasks == {"my.special.task": "lime_task_queue_special"}


def test_reference_json_form_is_read(tmp_path: Path) -> None:
    body = {"tasks_config": {"task_time_limit": 30, "timezone": "Europe/Stockholm"}}
    config = load_config(write(tmp_path, "stack.json", json.dumps(body)), environ={}).tasks
    assert config.task_time_limit == 30
    assert config.timezone == "Europe/Stockholm"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    environ = {
        "LIME_TASKS_TASK_SOFT_TIME_LIMIT": "12",
        "BROKER_URL": "redis://127.0.0.1:6379/3",
        "LIME_PACKAGES": "pkg_a, pkg_b",
    }
    stack = load_config(write(tmp_path, "stack.yaml", REFERENCE_YAML), environ=environ)
    assert stack.tasks.task_soft_time_limit == 12
    assert stack.tasks.broker_connection_string == "redis://127.0.0.1:6379/3"
    assert stack.packages == ["pkg_a", "pkg_b"]


def test_unknown_key_is_named_with_its_file(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "tasks:\n  task_time_limt: 3\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert raised.value.problems == [f"{path}: tasks.task_time_limt = 3: unknown key"]


def test_a_bad_value_names_file_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "tasks:\n  task_time_limit: soon\n  result_expires: x\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    problems = raised.value.problems
    assert len(problems) == 2
    assert problems[0].startswith(f"{path}: tasks.task_time_limit = 'soon': ")
    assert problems[1].startswith(f"{path}: tasks.result_expires = 'x': ")


def test_an_unknown_environment_variable_is_named_in_full(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ={"LIME_TASKS_FOO": "1", "LIME_TASKS_TASK_TIME_LIMIT": "soon"})
    assert sorted(raised.value.problems) == [
        "environment LIME_TASKS_FOO = 1: unknown key",
        "environment LIME_TASKS_TASK_TIME_LIMIT = 'soon': "
        "Input should be a valid number, unable to parse string as a number",
    ]


def test_a_nested_key_is_named_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "tasks:\n  routing:\n    qoss: {}\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    assert raised.value.problems == [f"{path}: tasks.routing.qoss: unknown key"]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("broken.yaml", "tasks:\n  timezone: UTC\n   bad: [\n", "not valid YAML"),
        ("broken.json", '{"tasks": ', "line 1: not valid JSON"),
        ("list.yaml", "- a\n- b\n", "must be a mapping, not list"),
        ("section.yaml", "tasks: 3\n", "tasks must be a mapping, not int"),
    ],
)
def test_an_unreadable_file_is_one_line_naming_it(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, environ={})
    (problem,) = raised.value.problems
    assert problem.startswith(str(path)) and expected in problem


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot be read"):
        load_config(tmp_path / "missing.yaml", environ={})


def test_a_config_error_stops_manage_py_with_the_lines_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", "tasks:\n  task_time_limit: soon\n")
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env={**os.environ, "LIME_CONFIG": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{path}: tasks.task_time_limit = 'soon': " in done.stderr


# --- An application's configuration -----------------------------------------------------------


def test_application_config_defaults() -> None:
    config = parse_application_config({})
    assert (config.language, config.timezone) == (DEFAULT_LANGUAGE, None)
    section = config.limepkg_task_starter
    assert (section.task_history, section.impersonate_user, section.tasks) == (10, "", [])


def test_application_config_keeps_keys_it_does_not_know() -> None:
    config = parse_application_config({"region": "north", "language": "sv"})
    assert config.language == "sv"
    assert config.model_extra == {"region": "north"}


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"limepkg_task_starter": {"task_history": 0}}, "limepkg_task_starter.task_history"),
        ({"limepkg_task_starter": {"task_history": "many"}}, "limepkg_task_starter.task_history"),
        ({"limepkg_task_starter": {"tasks": "a.b"}}, "limepkg_task_starter.tasks"),
        ({"limepkg_task_starter": {"task_histroy": 5}}, "limepkg_task_starter.task_histroy"),
        ({"scheduled_tasks": {"a.b": {"enabled": "maybe"}}}, "scheduled_tasks.a.b.enabled"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"language": ""}, "language"),
    ],
)
def test_a_bad_application_config_names_the_key(config: dict, named: str) -> None:
    with pytest.raises(InvalidApplicationConfigError) as caught:
        parse_application_config(config)
    assert any(message.startswith(f"{named}: ") for message in caught.value.messages)


def test_scheduled_tasks_may_be_disabled_by_name() -> None:
    config = parse_application_config({"scheduled_tasks": {"a.b": {"enabled": False}}})
    assert not config.scheduled_task_enabled("a.b")
    assert config.scheduled_task_enabled("a.c")


def test_the_implied_redis_result_backend_is_a_warning_not_silent() -> None:
    implied = load_config(None, environ={}).tasks
    chosen = load_config(None, environ={"RESULT_BACKEND_URL": "None"}).tasks
    with override_settings(LIME_TASKS=implied):
        (warning,) = result_backend_is_chosen()
    assert warning.id == "taskstarter.W001"
    assert "redis://localhost" in warning.msg
    with override_settings(LIME_TASKS=chosen):
        assert result_backend_is_chosen() == []
