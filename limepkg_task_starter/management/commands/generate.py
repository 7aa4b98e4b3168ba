from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

TASKS_INIT = '''from . import tasks


def get_task_modules():
    """List all task modules that the task handler should register"""
    return [tasks]
'''

TASKS_MODULE = '''import logging

from lime_task import TaskFailure, task

logger = logging.getLogger(__name__)


@task
def example_task(app, text: str = "world"):
    """Say hello: replace with what your solution needs done in the background."""
    try:
        return f"Hello {text} from {app.name}"
    except Exception as e:
        logger.exception(e)
        raise TaskFailure(e) from e
'''

SCHEDULE_IMPORTS = """from lime_task.schedule import CronTab, ScheduledTask, TaskSession
"""

REGISTER_SCHEDULED = '''

def register_scheduled_tasks():
    """Scheduled tasks of this package: each runs as its session's user, on its schedule."""
    return [
        ScheduledTask(
            task=tasks.example_task,
            session=TaskSession(user_name="integration-user", language="en"),
            args=["scheduled"],
            schedule=CronTab(hour=7, minute=30, day_of_week=1),  # Mondays at 07:30
        ),
    ]
'''

ROOT_HOOK = """
try:
    from .tasks import register_scheduled_tasks  # noqa: F401
except ImportError:
    import logging

    logging.getLogger(__name__).info("{package} doesn't implement any scheduled tasks")
"""


class Command(BaseCommand):
    help = (
        "Scaffold a solution package: 'generate tasks PACKAGE' writes its tasks package; "
        "'generate scheduled-tasks PACKAGE' adds register_scheduled_tasks(). Existing files "
        "are never overwritten."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["tasks", "scheduled-tasks"])
        parser.add_argument("package", help="The package's import name, e.g. my_solution")
        parser.add_argument(
            "--directory",
            type=Path,
            default=Path.cwd(),
            help="Where the package lives (default: the current directory)",
        )

    def handle(self, *args: Any, what: str, package: str, directory: Path, **options: Any) -> None:
        root = directory.joinpath(*package.split("."))
        if not root.is_dir():
            raise CommandError(f"{root} is not a directory: create the package {package} first")
        tasks_dir = root / "tasks"
        if what == "tasks":
            self._write(tasks_dir / "__init__.py", TASKS_INIT)
            self._write(tasks_dir / "tasks.py", TASKS_MODULE)
        else:
            self._add_schedule(tasks_dir / "__init__.py", tasks_dir / "tasks.py")
            self._add_root_hook(root / "__init__.py", package)

    def _write(self, path: Path, text: str) -> None:
        if path.exists():
            raise CommandError(f"{path} exists: not overwritten")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {path}")

    def _add_schedule(self, init: Path, module: Path) -> None:
        if not init.exists():
            if not module.exists():
                self._write(module, TASKS_MODULE)
            self._write(init, SCHEDULE_IMPORTS + TASKS_INIT + REGISTER_SCHEDULED)
            return
        text = init.read_text(encoding="utf-8")
        if "def register_scheduled_tasks" in text:
            raise CommandError(f"{init} already defines register_scheduled_tasks: not changed")
        init.write_text(
            SCHEDULE_IMPORTS + text.rstrip("\n") + "\n" + REGISTER_SCHEDULED, encoding="utf-8"
        )
        self.stdout.write(f"Added register_scheduled_tasks() to {init}")

    def _add_root_hook(self, init: Path, package: str) -> None:
        text = init.read_text(encoding="utf-8") if init.exists() else ""
        if "register_scheduled_tasks" in text:
            return
        init.write_text(text + ROOT_HOOK.format(package=package), encoding="utf-8")
        self.stdout.write(f"Added the scheduled tasks import to {init}")
