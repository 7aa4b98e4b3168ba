"""One corpus of values Python accepts and a database cannot keep, through every boundary.

Marked integration so that ``bin/test`` runs it on PostgreSQL and again on SQLite: the two must
agree on what is refused. Refused input is answered 4xx (or ``InvalidArgumentsError``) with the
argument named, and nothing is recorded; a task that produces such a value ends FAILURE with the
reason, and the same task handler goes on with the next runs at once.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

import lime_task
from lime_task import LimeApplication, send_task
from lime_task.exceptions import InvalidArgumentsError
from lime_task.status import State
from limepkg_task_starter import tracking
from limepkg_task_starter.models import Application, TaskRun
from tests.limepkg_task_starter.conftest import make_user
from tests.limepkg_task_starter.test_hardening import assert_nothing_recorded
from tests.reference_solution.tasks.my_task_file import BAD_VALUES
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.integration

SLOW = "solution_demo.tasks.my_tasks.slow_report"  # steps: int, seconds_per_step: float
REMINDERS = "solution_demo.tasks.my_tasks.send_reminders"  # customer_ids: list[int], note: str
TASKS = "tests.reference_solution.tasks.my_task_file"
DEEP = "[" * 3000 + "]" * 3000
# The corpus's strings (NUL, a lone surrogate, over-size): what failure and progress messages,
# which are text, can carry.
TEXT_KINDS = sorted(kind for kind, value in BAD_VALUES.items() if isinstance(value, str))

# (name, JSON text of a value) as a person or a client would type or send it.
CORPUS_TEXT = [
    ("nul", '"a\\u0000b"'),
    ("nul key", '{"a\\u0000": 1}'),
    ("lone surrogate", '"x\\ud800y"'),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
    ("-Infinity", "-Infinity"),
    ("1e400", "1e400"),
    ("5,000 digits", "9" * 5000),
    ("deep", DEEP),
    ("over-size", json.dumps("x" * 300 * 1024)),
]
# Strings that a float parameter would convert to something not finite.
NOT_FINITE_TEXT = ["NaN", "nan", "inf", "-inf", "Infinity", "1e400"]
# The same as Python values, for send_task.
CORPUS_VALUES = [
    ("nul", "a\x00b"),
    ("nul key", {"a\x00": 1}),
    ("lone surrogate", "x\ud800y"),
    ("NaN", float("nan")),
    ("Infinity", float("inf")),
    ("-Infinity", float("-inf")),
    ("5,000 digits", 10**5000),
    ("deep", BAD_VALUES["deep"]),
    ("over-size", "x" * 300 * 1024),
]


@pytest.fixture
def demo(transactional_db: None) -> Application:
    return Application.objects.create(
        name="demo", config={"limepkg_task_starter": {"tasks": [SLOW, REMINDERS]}}
    )


@pytest.fixture
def starter(demo: Application) -> Client:
    client = Client()
    client.force_login(make_user("starter", perms=("view", "start"), applications=(demo,)))
    return client


def task_page(task: str) -> str:
    return f"/admin/task-starter/demo/tasks/{task}/"


@pytest.mark.parametrize(("name", "text"), CORPUS_TEXT, ids=[n for n, _ in CORPUS_TEXT])
def test_the_json_editor_refuses_it_at_the_argument(starter: Client, name: str, text: str) -> None:
    response = starter.post(
        task_page(REMINDERS),
        {"arguments": f'{{"customer_ids": [1], "note": {text}}}', "run_as": "self"},
    )
    assert response.status_code == 400, name
    assert "errorlist" in response.content.decode()
    assert_nothing_recorded()


@pytest.mark.parametrize(("name", "text"), CORPUS_TEXT, ids=[n for n, _ in CORPUS_TEXT])
def test_the_parameter_form_refuses_it_at_its_field(starter: Client, name: str, text: str) -> None:
    response = starter.post(
        task_page(REMINDERS),
        {"editor": "form", "param-customer_ids": f"[{text}]", "param-note": "x", "run_as": "self"},
    )
    assert response.status_code == 400, name
    assert_nothing_recorded()


@pytest.mark.parametrize("typed", ["a\x00b", "\x00"])
def test_the_parameter_form_refuses_a_nul_in_text(starter: Client, typed: str) -> None:
    response = starter.post(
        task_page(REMINDERS),
        {"editor": "form", "param-customer_ids": "[1]", "param-note": typed, "run_as": "self"},
    )
    assert response.status_code == 400
    assert "note: contains U+0000" in response.content.decode()
    assert_nothing_recorded()


@pytest.mark.parametrize("typed", NOT_FINITE_TEXT)
def test_a_float_parameter_refuses_text_that_converts_to_no_finite_number(
    starter: Client, typed: str
) -> None:
    form = starter.post(
        task_page(SLOW),
        {"editor": "form", "param-steps": "1", "param-seconds_per_step": typed, "run_as": "self"},
    )
    editor = starter.post(
        task_page(SLOW),
        {"arguments": json.dumps({"steps": 1, "seconds_per_step": typed}), "run_as": "self"},
    )
    api = starter.post(
        f"/api/v1/applications/demo/tasks/{SLOW}/runs",
        {"arguments": {"steps": 1, "seconds_per_step": typed}},
        content_type="application/json",
    )
    assert (form.status_code, editor.status_code, api.status_code) == (400, 400, 400)
    assert "seconds_per_step" in " ".join(api.json()["errors"])
    assert "finite number" in editor.content.decode()
    assert_nothing_recorded()


@pytest.mark.parametrize(("name", "text"), CORPUS_TEXT, ids=[n for n, _ in CORPUS_TEXT])
def test_the_api_refuses_it_with_a_problem(starter: Client, name: str, text: str) -> None:
    response = starter.post(
        f"/api/v1/applications/demo/tasks/{REMINDERS}/runs",
        f'{{"arguments": {{"customer_ids": [1], "note": {text}}}}}',
        content_type="application/json",
    )
    assert 400 <= response.status_code < 500, (name, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    assert_nothing_recorded()


@pytest.mark.parametrize(("name", "value"), CORPUS_VALUES, ids=[n for n, _ in CORPUS_VALUES])
def test_send_task_refuses_it_naming_the_argument(demo: Application, name: str, value: Any) -> None:
    app = LimeApplication("demo", user_name="admin")
    # Over-size is the arguments together: each one alone may be within the limit.
    with pytest.raises(InvalidArgumentsError, match=r"'note'|over the limit"):
        send_task(REMINDERS, app, [1], note=value)
    with pytest.raises(InvalidArgumentsError, match=r"Argument 1|over the limit"):
        send_task(SLOW, app, value)
    assert_nothing_recorded()


def test_a_run_id_with_a_nul_is_not_found(starter: Client, demo: Application) -> None:
    assert starter.get("/admin/task-starter/runs/a%00b/").status_code == 404
    assert starter.get("/api/v1/applications/demo/runs/a%00b").status_code == 404
    with pytest.raises(lime_task.NotFoundError):
        lime_task.get_status("a\x00b", "demo")


# --- Values a task produces ---------------------------------------------------------------


def wait_finished(task_ids: list[str], timeout: float = 30) -> dict[str, TaskRun]:
    def finished() -> dict[str, TaskRun] | None:
        runs = {run.id: run for run in TaskRun.objects.filter(id__in=task_ids)}
        done = all(run.finished_at is not None for run in runs.values())
        return runs if len(runs) == len(task_ids) and done else None

    return wait_for(finished, timeout, what=f"{len(task_ids)} runs to finish")


def test_a_result_the_database_cannot_keep_ends_the_run_and_holds_up_nothing(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    poisoned = {
        kind: send_task(f"{TASKS}.returns_bad_value", live_demo_app, kind).id for kind in BAD_VALUES
    }
    runs = wait_finished(list(poisoned.values()))
    for kind, task_id in poisoned.items():
        run = runs[task_id]
        assert (run.status, run.result) == ("FAILURE", None), kind
        assert run.reason.startswith("The task's result: "), (kind, run.reason)
        assert run.error_type == "lime_task.exceptions.ResultNotStorableError"
    assert "contains U+0000" in runs[poisoned["nul"]].reason
    assert "NaN or an infinity" in runs[poisoned["infinity"]].reason

    assert_the_next_runs_go_at_once(live_demo_app)


def assert_the_next_runs_go_at_once(app: LimeApplication) -> None:
    """The next runs of the same handler are not queued behind anything."""
    sent_at = time.monotonic()
    following = [send_task(f"{TASKS}.my_task", app, i, 1).id for i in range(3)]
    runs = wait_finished(following, timeout=10)
    took = time.monotonic() - sent_at
    assert [runs[task_id].status for task_id in following] == ["SUCCESS"] * 3
    print(f"three runs after the refused values: {took:.2f} s")
    assert took < 2, f"the three runs after the refused values took {took:.1f} s"


def test_a_task_failure_message_the_database_cannot_keep_ends_the_run_saying_why(
    worker: WorkerProcess, live_demo_app: LimeApplication
) -> None:
    """A failure's message is text (``TaskFailure`` keeps ``str(message)``): the corpus's strings
    cannot be kept as its result and the run says why; the others are kept as their text."""
    failed = {
        kind: send_task(f"{TASKS}.fails_with_bad_message", live_demo_app, kind).id
        for kind in BAD_VALUES
    }
    runs = wait_finished(list(failed.values()))
    for kind, task_id in failed.items():
        run = runs[task_id]
        assert run.status == "FAILURE", kind
        assert "\x00" not in run.error_message, kind
        assert len(run.error_message) <= tracking.MAX_ERROR_MESSAGE, kind
        if kind in TEXT_KINDS:
            assert run.result is None, kind
            assert run.reason.startswith("The failure message: "), (kind, run.reason)
    # What the message says is still shown, escaped where the database could not keep it.
    assert runs[failed["nul"]].error_message == "a\\x00b"
    assert "contains U+0000" in runs[failed["nul"]].reason
    assert runs[failed["surrogate"]].error_message == "\\ud800"
    assert "lone surrogate" in runs[failed["surrogate"]].reason
    assert "over the limit" in runs[failed["oversize"]].reason
    assert runs[failed["infinity"]].result == "{'x': inf}"  # its text is storable
    # Python cannot even write a 5,000-digit integer as text: the task's own error.
    huge = runs[failed["huge_integer"]]
    assert (huge.result, huge.error_type) == (None, "builtins.ValueError")

    assert_the_next_runs_go_at_once(live_demo_app)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_progress_the_database_cannot_keep_is_clamped_and_escaped(
    worker: WorkerProcess, live_demo_app: LimeApplication, kind: str
) -> None:
    task_id = send_task(f"{TASKS}.reports_bad_progress", live_demo_app, kind).id
    run = wait_finished([task_id])[task_id]

    assert (run.status, run.result) == ("SUCCESS", "reported")
    # The first report could not be kept as sent and held up nothing; the last one: an
    # infinite count and a count beyond the column, with a NUL.
    assert (run.progress_done, run.progress_total) == (0, 2**31 - 1)
    assert run.progress_message == "\\x00 half"


def test_a_finished_write_the_database_refuses_becomes_a_failure_saying_why(
    live_demo_app: LimeApplication,
) -> None:
    """The safety net under the checks above: whatever the database refuses (here an infinity,
    bypassing the task's own check) is written as FAILURE, and the next run's write goes on."""
    now = timezone.now()
    refused, next_run = (
        TaskRun.objects.create(
            id=str(uuid.uuid4()),
            application_id="demo",
            task_name=f"{TASKS}.my_task",
            status=State.STARTED,
            worker="handler@test",
            created_at=now,
            started_at=now,
        )
        for _ in range(2)
    )
    tracking._finish(refused.id, State.SUCCESS, worker="handler@test", result={"x": float("inf")})
    tracking._finish(next_run.id, State.SUCCESS, worker="handler@test", result=2)

    refused.refresh_from_db()
    next_run.refresh_from_db()
    assert (refused.status, refused.result) == (State.FAILURE, None)
    assert refused.reason.startswith("The run's outcome could not be stored as reported")
    assert refused.finished_at is not None
    assert (next_run.status, next_run.result) == (State.SUCCESS, 2)
    assert not tracking._backlog
