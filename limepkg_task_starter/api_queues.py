"""The JSON API for queues: their pause state, and Pause / Resume as on the handlers page.

Registered on the API in ``api.py`` by its import path (this module stays independent of it, as
the import-linter layers say). Refusals (permission 403, unknown queue 404, already paused or
not paused 409) are answered by the API's refusal handler from ``refusals``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status

from lime_task.config import tasks_config
from lime_task.routing import all_queue_names
from limepkg_task_starter import selectors
from limepkg_task_starter.models import QueuePause
from limepkg_task_starter.permissions import VIEW_RUNS
from limepkg_task_starter.services import queues

MAY_NOT_VIEW_QUEUES = "You may not view queues."

router = Router(tags=["queues"])


class QueueState(Schema):
    queue: str
    paused: bool
    paused_at: datetime | None = None
    paused_by: str | None = None


class QueueProblem(Schema):
    detail: str
    errors: list[str] = []


ERRORS: dict[int, type[Schema]] = {401: QueueProblem, 422: QueueProblem, 429: QueueProblem}


def _state(queue: str, pause: QueuePause | None) -> dict[str, Any]:
    if pause is None:
        return {"queue": queue, "paused": False}
    return {
        "queue": queue,
        "paused": True,
        "paused_at": pause.paused_at,
        "paused_by": pause.paused_by_username,
    }


@router.get(
    "",
    response={200: list[QueueState], 403: QueueProblem, **ERRORS},
    summary="List the queues and whether each is paused",
)
def queue_list(request: HttpRequest) -> Any:
    user: Any = request.auth  # type: ignore[attr-defined]
    if not user.has_perm(VIEW_RUNS):
        return Status(403, {"detail": MAY_NOT_VIEW_QUEUES})
    pauses = selectors.queue_pauses()
    return Status(200, [_state(name, pauses.get(name)) for name in all_queue_names(tasks_config())])


@router.post(
    "/{queue}/pause",
    response={200: QueueState, 403: QueueProblem, 404: QueueProblem, 409: QueueProblem, **ERRORS},
    summary="Pause a queue: task handlers take no new runs from it until it is resumed",
)
def queue_pause(request: HttpRequest, queue: str) -> Any:
    pause = queues.queue_pause(actor=request.auth, queue=queue)  # type: ignore[attr-defined]
    return Status(200, _state(queue, pause))


@router.post(
    "/{queue}/resume",
    response={200: QueueState, 403: QueueProblem, 404: QueueProblem, 409: QueueProblem, **ERRORS},
    summary="Resume a paused queue: its waiting runs are taken again",
)
def queue_resume(request: HttpRequest, queue: str) -> Any:
    queues.queue_resume(actor=request.auth, queue=queue)  # type: ignore[attr-defined]
    return Status(200, _state(queue, None))
