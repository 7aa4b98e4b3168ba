from lime_task.schedule import CronTab, ScheduledTask, TaskSession

from . import framework_tasks, my_tasks


def get_task_modules():
    """List all task modules that the task handler should register."""
    return [my_tasks, framework_tasks]


def register_scheduled_tasks():
    return [
        ScheduledTask(
            task=my_tasks.nightly_cleanup,
            session=TaskSession(user_name="integration-user", language="en"),
            schedule=CronTab(hour=2, minute=30),
            args=[30],
        ),
    ]
