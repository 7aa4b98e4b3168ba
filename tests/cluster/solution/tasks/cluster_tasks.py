import time

from lime_task import task


@task
def quick(app, number: int):
    return number


@task
def long_early(app, seconds: float):
    """Acknowledged when it starts (the default): a lost worker's run is not run again."""
    time.sleep(seconds)
    return seconds


@task(acks_late=True)
def long_late(app, seconds: float):
    """Acknowledged when it ends: a lost worker's run goes back to the queue."""
    time.sleep(seconds)
    return seconds


@task
def tick(app):
    return "tick"
