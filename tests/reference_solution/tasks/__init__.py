"""A solution package written the way the reference documents write one."""

from . import framework_tasks, lime, my_task_file


def get_task_modules():
    """List all task modules that lime-task-handler should register"""
    return [lime, my_task_file, framework_tasks]
