from __future__ import annotations

import importlib
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from lime_task.schedule import ScheduledTask


def generate(*args: str, directory: Path) -> str:
    out = StringIO()
    call_command("generate", *args, "--directory", str(directory), stdout=out)
    return out.getvalue()


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "solution_fresh"
    root.mkdir()
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m.startswith("solution_fresh")]:
        del sys.modules[name]


def test_generated_tasks_and_schedule_load_as_the_reference_describes(package: Path) -> None:
    generate("tasks", "solution_fresh", directory=package.parent)
    generate("scheduled-tasks", "solution_fresh", directory=package.parent)

    tasks_package = importlib.import_module("solution_fresh.tasks")
    [module] = tasks_package.get_task_modules()
    assert module.example_task.name == "solution_fresh.tasks.tasks.example_task"
    [scheduled] = tasks_package.register_scheduled_tasks()
    assert isinstance(scheduled, ScheduledTask)
    assert scheduled.task is module.example_task
    assert importlib.import_module("solution_fresh").register_scheduled_tasks


def test_scheduled_tasks_alone_writes_the_tasks_package_too(package: Path) -> None:
    generate("scheduled-tasks", "solution_fresh", directory=package.parent)
    assert importlib.import_module("solution_fresh.tasks").register_scheduled_tasks()


def test_existing_files_are_never_overwritten(package: Path) -> None:
    generate("tasks", "solution_fresh", directory=package.parent)
    (package / "tasks" / "tasks.py").write_text("# mine\n")
    with pytest.raises(CommandError, match="exists: not overwritten"):
        generate("tasks", "solution_fresh", directory=package.parent)
    assert (package / "tasks" / "tasks.py").read_text() == "# mine\n"

    generate("scheduled-tasks", "solution_fresh", directory=package.parent)
    with pytest.raises(CommandError, match="already defines register_scheduled_tasks"):
        generate("scheduled-tasks", "solution_fresh", directory=package.parent)


def test_missing_package_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not a directory"):
        generate("tasks", "nowhere", directory=tmp_path)
