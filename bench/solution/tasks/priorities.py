import time

from lime_task import task


@task(qos="asap")
def ping(app):
    return "pong"


@task(qos="background")
def slow(app, seconds: float = 0.1):
    time.sleep(seconds)
    return seconds
