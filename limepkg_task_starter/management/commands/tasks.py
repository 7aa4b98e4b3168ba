from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lime_task.config import tasks_config
from lime_task.registry import registered_tasks
from lime_task.routing import queue_name, route_task


class Command(BaseCommand):
    help = "Task handler tools. 'tasks routes': the configured routing and every task's queue."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["routes"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action != "routes":  # pragma: no cover - argparse refuses other actions
            raise CommandError(f"Unknown action {action}")
        config = tasks_config()
        write = self.stdout.write
        write("QoS category routes:")
        for category, queue in sorted(config.routing.qos.items()):
            write(f"  {category:<20} -> {queue_name(queue)}")
        write("Specific task name routes:")
        if not config.routing.tasks:
            write("  (none)")
        for task_name, queue in sorted(config.routing.tasks.items()):
            write(f"  {task_name} -> {queue_name(queue)}")
        write(f"Default queue: {queue_name(config.task_queue_name)}")
        write("Registered tasks:")
        tasks = registered_tasks()
        width = max((len(name) for name in tasks), default=0)
        for name, found in tasks.items():
            route = route_task(config, name, task_qos=found.qos)
            write(f"  {name:<{width}}  {route.route_type:<13}  {route.queue}")
