# Tasks as the Task starter reference writes them.
import functools
import logging
import time

from lime_task import TaskFailure, report_progress, task
from limepkg_task_starter.db import track_current_task

logger = logging.getLogger(__name__)


@task
def my_task(app, number, numberx):
    return number + numberx


@task
def example_task(app, text: str):
    try:
        return "Done with the task: " + text
    except Exception as e:
        logger.exception(e)
        raise TaskFailure(e)


@task
def dummy_task(app, number: int = 5, numberx: int = 10):
    try:
        track_current_task(
            app=app, task=dummy_task,
            arguments={'number': number, 'numberx': numberx}
        )
        return number * 5 * numberx
    except Exception as e:
        logger.exception(e)
        raise TaskFailure(e)


@task
def crash(app):
    raise KeyError("no such key")


@task
def counted_steps(app, steps: int, pause: float):
    for step in range(1, steps + 1):
        time.sleep(pause)
        report_progress(step, steps, f"step {step}")
    return f"{steps} steps"


@task
def sleeper(app, seconds: float):
    time.sleep(seconds)
    return f"slept {seconds}"


@task
def who_am_i(app):
    return {"application": app.name, "user": app.user_name, "language": app.language,
            "config": dict(app.config)}


@task
def returns_a_set(app):
    return {1, 2, 3}


@task
def touch(app, path: str):
    with open(path, "a", encoding="utf-8") as marker:
        marker.write(f"ran for {app.name}\n")
    return f"touched {path}"


@task(qos="asap")
def urgent(app):
    return "urgent done"


@task
def stubborn_sleeper(app, seconds: float):
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        time.sleep(seconds)
    except SoftTimeLimitExceeded:
        time.sleep(seconds)  # ignores the soft limit: only the hard limit can end it
    return "never"


@task(acks_late=True)
def late_ack_sleeper(app, seconds: float, path: str):
    with open(path, "a", encoding="utf-8") as marker:
        marker.write("attempt\n")
    time.sleep(seconds)
    return f"slept {seconds}"


@task
def weekly_report(app, title, options, flag, number, nothing):
    return f"{title} {options} {flag} {number} {nothing}"


# Values Python accepts and a database cannot keep, made inside the task (its arguments could
# not carry them): each names one in BAD_VALUES.
BAD_VALUES = {
    "nul": "a\x00b",
    "infinity": {"x": float("inf")},
    "nan": [float("nan")],
    "surrogate": "\ud800",
    "huge_integer": 10**5000,
    "deep": functools.reduce(lambda inner, _: [inner], range(200), []),
    "oversize": "x" * (65 * 1024),
}


@task
def returns_bad_value(app, kind: str):
    return BAD_VALUES[kind]


@task
def fails_with_bad_message(app, kind: str):
    raise TaskFailure(BAD_VALUES[kind])


@task
def reports_bad_progress(app, kind: str):
    value = BAD_VALUES[kind]
    report_progress(1, 2, value if isinstance(value, str) else repr(value)[:100])
    report_progress(float("inf"), 10**30, "\x00 half")
    return "reported"


@task
def chatty(app, label: str, lines: int, pause: float = 0.0, fail: bool = False):
    """Logs ``lines`` numbered lines tagged with ``label`` (a DEBUG one too), pausing between."""
    for number in range(1, lines + 1):
        logger.info("%s line %d", label, number)
        logger.debug("%s debug %d", label, number)
        time.sleep(pause)
    if fail:
        raise TaskFailure(f"{label} gave up")
    return label
