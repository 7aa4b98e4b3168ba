"""Configuration, read and checked in one place.

* The task handler configuration: the ``tasks:`` section of the application stack config. The
  keys and their defaults follow the Lime task handler reference. The file is YAML or JSON
  (``LIME_CONFIG`` names it); single keys can be overridden from the environment with
  ``LIME_TASKS_<KEY>`` (for example ``LIME_TASKS_TASK_TIME_LIMIT=60``), and the broker and result
  backend also with the conventional ``BROKER_URL`` and ``RESULT_BACKEND_URL``. The settings
  load it once; ``tasks_config()`` is the one in force.
* An application's configuration (``ApplicationConfig``): its ``language``, ``timezone``,
  ``scheduled_tasks`` and the ``limepkg_task_starter`` section, as under ``config:`` in a
  Lime-style application config.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_LANGUAGE = "en"
DEFAULT_TASK_HISTORY = 10

DEFAULT_QOS_QUEUES = {
    "asap": "lime_task_queue_asap",
    "background": "lime_task_queue_background",
    "scheduled": "lime_task_queue_scheduled",
}

ENV_PREFIX = "LIME_TASKS_"


def _none_words_to_none(value: Any) -> Any:
    # The reference config writes ``None`` where YAML would need ``null``.
    if isinstance(value, str) and value.strip() in {"None", "none", "null", ""}:
        return None
    return value


class RoutingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    qos: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_QOS_QUEUES))
    tasks: dict[str, str] = Field(default_factory=dict)

    @field_validator("qos", "tasks", mode="before")
    @classmethod
    def _empty_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value


class TasksConfig(BaseModel):
    """The ``tasks:`` section, with the reference defaults."""

    model_config = ConfigDict(extra="forbid")

    broker_connection_string: str = "amqp://"
    backend_connection_string: str | None = "redis://localhost"
    task_time_limit: float | None = None
    task_soft_time_limit: float | None = None
    task_queue_name: str = "lime_default_task_queue"
    task_exchange_name: str = "lime_default_task_exchange"
    task_routing_key_name: str = "lime_default_routing_key"
    enable_scheduled_tasks: bool = True
    result_expires: int = 2_592_000
    log_message_max_size: int = 0
    timezone: str = "UTC"
    routing: RoutingConfig = Field(default_factory=RoutingConfig)

    # Beyond the reference: how the run history is kept honest.
    heartbeat_interval: float = Field(
        default=5.0, description="Seconds between a worker's liveness marks in the database."
    )
    worker_lost_after: float = Field(
        default=60.0,
        description="A STARTED run whose worker has not marked itself alive for this long ends "
        "as FAILURE (worker lost).",
    )
    shutdown_grace: float = Field(
        default=8.0,
        description="Seconds a stopping task handler waits for its running tasks before it stops "
        "them (each run then ends as FAILURE, saying so). The handler exits at most 5 s later.",
    )
    run_log_level: str = Field(
        default="INFO",
        description="Log records a task emits at this level or above are kept with its run "
        "(View info, the API); NONE keeps none.",
    )
    run_log_max_bytes: int = Field(
        default=65_536,
        ge=1_024,
        le=10_485_760,
        description="The most of a run's log kept: the first and the last lines, half each, "
        "with the number dropped between.",
    )
    pending_timeout: float = Field(
        default=3600.0,
        description="A PENDING run no worker has started within this many seconds ends as "
        "FAILURE (never reached a worker).",
    )

    @field_validator("run_log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value != "NONE" and not isinstance(logging.getLevelName(value), int):
            raise ValueError("a log level: DEBUG, INFO, WARNING, ERROR, CRITICAL or NONE")
        return value

    @field_validator(
        "backend_connection_string", "task_time_limit", "task_soft_time_limit", mode="before"
    )
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        return _none_words_to_none(value)


class StackConfig(BaseModel):
    """The whole config file: the ``tasks:`` section plus the solution packages to load."""

    model_config = ConfigDict(extra="ignore")

    tasks: TasksConfig = Field(default_factory=TasksConfig)
    packages: list[str] = Field(default_factory=list)


class ConfigError(ValueError):
    """A config that cannot be used: one line per problem, naming where it was written.

    Each line names the file (or the environment variable), the key and the value, so the
    operator can fix it without reading a traceback.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def read_config_file(path: Path) -> dict[str, Any]:
    """The file's mapping; a :class:`ConfigError` naming the file if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError([f"{path}: cannot be read ({error})"]) from error
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise ConfigError([f"{path}, line {error.lineno}: not valid JSON ({error.msg})"]) from error
    except yaml.YAMLError as error:
        raise ConfigError([f"{path}: not valid YAML ({_yaml_problem(error)})"]) from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{path}: the configuration must be a mapping, not {type(data).__name__}"]
        )
    # The JSON form of the reference names the section ``tasks_config``.
    if "tasks_config" in data and "tasks" not in data:
        data["tasks"] = data.pop("tasks_config")
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}" if mark is not None else str(problem)


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """``{key: (variable, value)}`` for each tasks key the environment sets."""
    overrides: dict[str, tuple[str, Any]] = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX):
            overrides[name.removeprefix(ENV_PREFIX).lower()] = (name, yaml.safe_load(raw))
    if environ.get("BROKER_URL"):
        overrides["broker_connection_string"] = ("BROKER_URL", environ["BROKER_URL"])
    if "RESULT_BACKEND_URL" in environ:
        overrides["backend_connection_string"] = (
            "RESULT_BACKEND_URL",
            environ["RESULT_BACKEND_URL"],
        )
    return overrides


def load_config(path: Path | None, environ: Mapping[str, str] = os.environ) -> StackConfig:
    """Read the config file (if any), apply environment overrides and validate the result.

    Raises :class:`ConfigError`, one line per problem naming the file or variable, key and value.
    """
    data = read_config_file(path) if path is not None else {}
    section = data.get("tasks") or {}
    if not isinstance(section, dict):
        raise ConfigError([f"{path}: tasks must be a mapping, not {type(section).__name__}"])
    tasks = dict(section)
    written_in = {key: f"{path}: tasks.{key}" for key in tasks}
    for key, (variable, value) in _environment_overrides(environ).items():
        tasks[key] = value
        written_in[key] = f"environment {variable}"
    packages = list(data.get("packages") or [])
    packages += [p.strip() for p in environ.get("LIME_PACKAGES", "").split(",") if p.strip()]
    try:
        validated = TasksConfig.model_validate(tasks)
    except ValidationError as error:
        raise ConfigError([_problem(e, written_in, path) for e in error.errors()]) from error
    return StackConfig(tasks=validated, packages=list(dict.fromkeys(packages)))


def _problem(error: Any, written_in: dict[str, str], path: Path | None) -> str:
    location = [str(part) for part in error["loc"]]
    where = written_in.get(location[0], f"{path}: tasks.{location[0]}") if location else str(path)
    if len(location) > 1:
        where += "." + ".".join(location[1:])
    message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
    value = error.get("input")
    shown = "" if error["type"] == "missing" or isinstance(value, dict) else f" = {value!r}"
    return f"{where}{shown}: {message}"


def tasks_config() -> TasksConfig:
    """The task handler configuration in force, as the Django settings loaded it."""
    config: TasksConfig = settings.LIME_TASKS
    return config


# --- An application's configuration ---------------------------------------------------------


class TaskStarterSection(BaseModel):
    """``limepkg_task_starter:`` in an application's config."""

    model_config = ConfigDict(extra="forbid")

    task_history: int = Field(
        default=DEFAULT_TASK_HISTORY, ge=1, le=10_000, description="Runs kept per task."
    )
    impersonate_user: str = Field(
        default="", description="The user 'Start task as user …' runs tasks as."
    )
    tasks: list[str] = Field(default_factory=list, description="The tasks the Task starter shows.")

    @field_validator("impersonate_user", mode="before")
    @classmethod
    def _none_is_nobody(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("tasks", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class ScheduledTaskSetting(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class ApplicationConfig(BaseModel):
    """An application's config mapping. Keys it does not know are kept for solution code."""

    model_config = ConfigDict(extra="allow")

    language: str = Field(default=DEFAULT_LANGUAGE, min_length=1, max_length=16)
    timezone: str | None = Field(
        default=None, description="The zone its schedules run in; the tasks config's by default."
    )
    scheduled_tasks: dict[str, ScheduledTaskSetting] = Field(default_factory=dict)
    limepkg_task_starter: TaskStarterSection = Field(default_factory=TaskStarterSection)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as error:
                raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("language", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return DEFAULT_LANGUAGE if value is None else value

    @field_validator("scheduled_tasks", "limepkg_task_starter", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    def scheduled_task_enabled(self, task_name: str) -> bool:
        setting = self.scheduled_tasks.get(task_name)
        return setting is None or setting.enabled


class InvalidApplicationConfigError(ValueError):
    """An application config that does not fit the schema; the message names each bad key."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def parse_application_config(config: Mapping[str, Any] | None) -> ApplicationConfig:
    """Check an application's config; raises :class:`InvalidApplicationConfigError`."""
    try:
        return ApplicationConfig.model_validate(dict(config or {}))
    except ValidationError as error:
        raise InvalidApplicationConfigError(
            [
                f"{'.'.join(str(part) for part in e['loc']) or 'config'}: {e['msg']}"
                for e in error.errors()
            ]
        ) from error
