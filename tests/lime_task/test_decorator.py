from __future__ import annotations

from lime_task import LimeApplication, LimeTask, task
from solution_demo.tasks.my_tasks import dummy_task, slow_report


@task
def bare(app, value=1):
    return (app.name, value)


@task(acks_late=True, qos="asap", max_retries=7)
def with_options(app):
    return app.name


def test_name_is_the_full_import_path() -> None:
    assert dummy_task.name == "solution_demo.tasks.my_tasks.dummy_task"
    assert bare.name == f"{__name__}.bare"


def test_bare_decorator_makes_an_early_ack_lime_task() -> None:
    assert isinstance(bare, LimeTask)
    assert bare.acks_late is False
    assert bare.qos is None


def test_options_pass_through_to_celery() -> None:
    assert with_options.acks_late is True
    assert with_options.qos == "asap"
    assert with_options.max_retries == 7
    assert slow_report.qos == "background"


def test_direct_call_passes_the_application_through() -> None:
    app = LimeApplication("demo", config={})
    assert bare(app, 3) == ("demo", 3)
