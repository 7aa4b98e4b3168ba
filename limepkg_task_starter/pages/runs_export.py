"""**Export CSV** on the runs page: the runs the current filter matches, newest first, as a
streamed CSV file of at most ``selectors.MAX_EXPORT_ROWS`` rows, for whoever may see the page.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or
carriage return) as a formula, and a run's arguments, result and error message are whatever a
task or its caller wrote: such a cell gets a leading apostrophe, which spreadsheets show as
text (OWASP's advice for CSV injection).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from lime_task.status import State
from limepkg_task_starter import selectors
from limepkg_task_starter.forms import STATUS_LABELS, RunFilterForm
from limepkg_task_starter.models import TaskRun
from limepkg_task_starter.permissions import VIEW_RUNS

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "id",
    "task",
    "status",
    "arguments",
    "result",
    "error type",
    "error message",
    "reason",
    "started by",
    "run as",
    "origin",
    "queue",
    "worker",
    "sent at (UTC)",
    "started at (UTC)",
    "finished at (UTC)",
    "duration (s)",
    "rerun of",
)
CHUNK = 1000  # rows read from the database at a time


class Echo:
    """What csv.writer writes to: it hands each line back instead of keeping it."""

    def write(self, value: str) -> str:
        return value


def neutralised(value: Any) -> str:
    """A cell as text, with a leading apostrophe where a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment else ""


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _status(run: TaskRun) -> str:
    if run.skipped:
        return "Skipped"
    if run.cancelled_at and run.status == State.REVOKED:
        return STATUS_LABELS[State.REVOKED]
    return str(run.status).title()


def run_cells(run: TaskRun) -> list[Any]:
    duration = run.duration_seconds
    return [
        run.id,
        run.task_name,
        _status(run),
        _json(run.arguments if run.arguments is not None else run.kwargs or run.args),
        _json(run.result),
        run.error_type,
        run.error_message,
        run.reason,
        run.started_by.get_username() if run.started_by else "",
        run.run_as,
        run.get_origin_display(),
        run.queue,
        run.worker,
        _time(run.created_at),
        _time(run.started_at),
        _time(run.finished_at),
        f"{duration:.3f}" if duration is not None else "",
        run.rerun_of_id or "",
    ]


def csv_lines(runs: Iterable[TaskRun]) -> Iterator[str]:
    """The file, line by line: a byte-order mark (so Excel reads UTF-8), the header, the runs."""
    writer = csv.writer(Echo())
    yield "\ufeff"
    yield writer.writerow(COLUMNS)
    for run in runs:
        yield writer.writerow([neutralised(cell) for cell in run_cells(run)])


@require_GET
def runs_export(request: HttpRequest, app_name: str, *, site: AdminSite) -> StreamingHttpResponse:
    if not request.user.has_perm(VIEW_RUNS):
        raise PermissionDenied
    application = selectors.application_for_user(user=request.user, name=app_name)
    if application is None:
        raise Http404("No such application")
    form = RunFilterForm(
        request.GET or None, task_names=selectors.run_task_names(application=application)
    )
    runs = selectors.runs_filtered(application=application, filters=form.filters(), before=None)
    rows = runs[: selectors.MAX_EXPORT_ROWS].iterator(chunk_size=CHUNK)
    response = StreamingHttpResponse(csv_lines(rows), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="runs-{app_name}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
