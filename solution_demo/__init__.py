"""A demo solution package: the tasks the Task starter shows out of the box."""

try:
    from .tasks import register_scheduled_tasks  # noqa: F401
except ImportError:
    import logging

    logging.getLogger(__name__).info("solution_demo doesn't implement any scheduled tasks")
