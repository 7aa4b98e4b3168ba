"""The API fuzzed by Schemathesis from its own OpenAPI description, with a real token: no
server errors, every response as documented, and only valid starts recorded."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.generation import GenerationMode

from limepkg_task_starter.models import Application, ScheduleDeclaration, TaskRun
from limepkg_task_starter.services.tokens import api_token_create
from tests.limepkg_task_starter.conftest import DUMMY, make_user

# Examples per operation: enough to reach the odd corners of each schema, sized for CI.
EXAMPLES = 150


@pytest.fixture
def api_schema(pages_application: Application) -> Iterator[Any]:
    # As Django's test client does: a request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def no_throttling(settings: Any) -> None:
    """Schemathesis sends wrong credentials on purpose, thousands of times: the throttle would
    answer 429 (tests/limepkg_task_starter/test_throttling.py covers it)."""
    settings.AXES_FAILURE_LIMIT = 10**9


@pytest.fixture
def bearer(pages_application: Application) -> dict[str, str]:
    user = make_user(
        "fuzzer",
        perms=("view", "start", "cancel", "traceback", "pause_queue", "pause"),
        applications=(pages_application,),
    )
    _, key = api_token_create(user=user, name="fuzzing")
    return {"Authorization": f"Bearer {key}"}


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


# Each operation is driven through Hypothesis directly, three ways: requests that fit the schema,
# requests that break it, and fitting requests aimed at a real application and task.
def strategies(operation: Any, schedule_id: int) -> list[Any]:
    known = {
        "app_name": "demo",
        "task_name": DUMMY,
        "queue": "lime_task_queue_background",
        "schedule_id": schedule_id,
    }
    aimed = {name: value for name, value in known.items() if f"{{{name}}}" in operation.path}
    return [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        operation.as_strategy(GenerationMode.POSITIVE, path_parameters=aimed),
    ]


OPERATIONS = [
    "GET /api/v1/applications/{app_name}/bulk-actions/{action_id}",
    "GET /api/v1/applications/{app_name}/runs",
    "GET /api/v1/applications/{app_name}/runs/{run_id}",
    "GET /api/v1/applications/{app_name}/runs/{run_id}/log",
    "GET /api/v1/applications/{app_name}/schedules",
    "GET /api/v1/queues",
    "POST /api/v1/applications/{app_name}/retries",
    "POST /api/v1/applications/{app_name}/runs/{run_id}/cancel",
    "POST /api/v1/applications/{app_name}/schedules/{schedule_id}/pause",
    "POST /api/v1/applications/{app_name}/schedules/{schedule_id}/resume",
    "POST /api/v1/applications/{app_name}/tasks/{task_name}/runs",
    "POST /api/v1/queues/{queue}/pause",
    "POST /api/v1/queues/{queue}/resume",
]
# What the fuzzing must reach in each operation besides refusals, so it is known to go deep.
REACHED = {
    "GET /api/v1/applications/{app_name}/runs": {200},
    "GET /api/v1/queues": {200},
    "POST /api/v1/applications/{app_name}/retries": {200, 202},
    "POST /api/v1/applications/{app_name}/tasks/{task_name}/runs": {202, 400, 404},
}


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    assert sorted(operation.label for operation in operations(api_schema)) == OPERATIONS


# One test per operation: each within the suite's time limit for one test.
@pytest.mark.parametrize("label", OPERATIONS)
def test_the_api_holds_under_generated_requests(
    api_schema: Any,
    bearer: dict[str, str],
    a_run: TaskRun,
    a_schedule: ScheduleDeclaration,
    label: str,
) -> None:
    """``a_run`` is a failed run: a retry by filter finds it (202, then 409 while that bulk
    action runs: nothing processes it here)."""
    [operation] = [found for found in operations(api_schema) if found.label == label]
    statuses: set[int] = set()
    for strategy in strategies(operation, a_schedule.periodic_task_id):

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def holds(case: Any) -> None:
            runs_before = TaskRun.objects.count()
            # A body that fits the schema may still not fit the task's signature (any
            # arguments object does), so schema-valid data answered with the documented 400
            # is right here; every other check stands.
            response = case.call_and_validate(
                headers=bearer, excluded_checks=[positive_data_acceptance]
            )
            statuses.add(response.status_code)
            if response.status_code >= 300:  # refused: nothing recorded
                assert TaskRun.objects.count() == runs_before

        holds()
    assert REACHED.get(label, set()) <= statuses, statuses
