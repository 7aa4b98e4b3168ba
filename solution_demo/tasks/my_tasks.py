"""Demo tasks: one of each kind an administrator meets in the Task starter."""

import logging
import time

from lime_task import TaskFailure, report_progress, task
from limepkg_task_starter.db import track_current_task

logger = logging.getLogger(__name__)


@task
def dummy_task(app, number: int = 5, numberx: int = 10):
    """Multiply two numbers by five (the reference example)."""
    try:
        track_current_task(
            app=app, task=dummy_task, arguments={"number": number, "numberx": numberx}
        )
        return number * 5 * numberx
    except Exception as e:
        logger.exception(e)
        raise TaskFailure(e)


@task
def example_task(app, text: str):
    """Say it is done with the given text; fails cleanly when the text is not a string."""
    try:
        return "Done with the task: " + text
    except Exception as e:
        logger.exception(e)
        raise TaskFailure(e)


@task(qos="background")
def slow_report(app, steps: int = 20, seconds_per_step: float = 1.0):
    """Build a report slowly (about 20 s), reporting progress and logging each step."""
    logger.info("Building a report of %d sections for %s", steps, app.name)
    for step in range(1, steps + 1):
        time.sleep(seconds_per_step)
        logger.info("Section %d of %d written", step, steps)
        report_progress(step, steps, f"Section {step} of {steps}")
    return f"Report ready: {steps} sections for {app.name}"


@task
def validate_customer(app, customer_id: int):
    """Check a customer record; fails with a message for ids that are not positive."""
    if customer_id <= 0:
        raise TaskFailure(f"Customer id must be positive, got {customer_id}")
    return f"Customer {customer_id} is valid"


@task
def broken_import(app, path: str = "/tmp/missing.csv"):
    """An import with a bug: it always ends in an unhandled exception."""
    logger.info("Importing %s", path)
    with open(path, encoding="utf-8") as source:  # raises FileNotFoundError for the default
        return f"Imported {len(source.readlines())} rows"


@task
def update_sales_reps(app, deal_count: int = 50, coworker_id: int = 1234):
    """Reassign deals; returns a one-line summary, as a good task result should."""
    return (
        f"updated the sales representative of {deal_count} deal entities "
        f"to coworker with id {coworker_id}"
    )


@task
def send_reminders(app, customer_ids: list[int], dry_run: bool = True, note: str = ""):
    """Remind customers of their open invoices; with dry_run, only count whom it would remind."""
    if dry_run:
        return {"would_remind": len(customer_ids)}
    return {"reminded": sorted(customer_ids), "note": note}


@task(qos="scheduled")
def nightly_cleanup(app, days: int = 30):
    """Nightly: remove temporary files older than the given number of days (runs at 02:30)."""
    track_current_task(app=app, task=nightly_cleanup, arguments={"days": days})
    return f"Removed temporary files older than {days} days for {app.name}"
