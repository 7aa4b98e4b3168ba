"""The run table's two hot writes, as statements prepared once from the model's fields.

Sending writes one row per run and the worker updates it at each change of state, on every run:
a plain statement costs a third of what ``Model.save()`` or ``QuerySet.update()`` build each time.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Field

from limepkg_task_starter.models import RUN_FINISHED_CHANNEL, TaskRun


def run_insert(run: TaskRun) -> None:
    """INSERT ``run`` with every column, as ``save()`` would, in one statement."""
    fields = _fields()
    values = [field.get_db_prep_save(getattr(run, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(_insert_statement(connection.vendor), values)
    run._state.adding = False
    run._state.db = str(connection.alias)


# Conditions on a worker's report (each ``%s`` is the reporting worker's name, '' when unknown).
# A report that does not meet its condition touches no row and is handled apart
# (services.worker): it came after the run was decided without that worker.
# Started: not when the run was cancelled, nor when another worker has already finished it.
STARTED_UNLESS_FINISHED_ELSEWHERE = (
    "{cancelled_at} IS NULL AND ({finished_at} IS NULL OR {reconciled_at} IS NOT NULL "
    "OR %s = '' OR {worker} IN (%s, ''))"
)
# Finished: only by the run's own worker, and not after the run was cancelled or ended for a
# lost worker.
FINISHED_BY_ITS_WORKER = (
    "{cancelled_at} IS NULL AND {reconciled_at} IS NULL AND (%s = '' OR {worker} IN (%s, ''))"
)


def run_update(
    task_id: str,
    changes: dict[str, Any],
    *,
    announce: bool = False,
    condition: str = "",
    worker: str = "",
) -> int:
    """UPDATE one run's ``changes`` (field name → value); the number of rows it touched.

    With ``announce``, on PostgreSQL, the same statement wakes whoever waits for the run
    (``lime_task.wait_for_status``) with NOTIFY, sent when it commits. A ``condition`` (one of
    the constants above) limits the update to a run the reporting ``worker`` still speaks for.
    """
    columns = tuple(changes)
    by_name = {field.name: field for field in _fields()}
    values = [by_name[name].get_db_prep_save(changes[name], connection) for name in columns]
    announcing = announce and connection.vendor == "postgresql"
    parameters = [*values, task_id, *[worker] * condition.count("%s")]
    with connection.cursor() as cursor:
        cursor.execute(
            _update_statement(connection.vendor, columns, announcing, condition), parameters
        )
        if announcing:
            return len(cursor.fetchall())  # one notification per row updated
        return int(cursor.rowcount)


@cache
def _fields() -> tuple[Field[Any, Any], ...]:
    return tuple(TaskRun._meta.concrete_fields)


@cache
def _fields_by_name() -> dict[str, Field[Any, Any]]:
    return {field.name: field for field in _fields()}


def _column(name: str) -> str:
    return connection.ops.quote_name(str(_fields_by_name()[name].column))


@cache
def _insert_statement(vendor: str) -> str:
    table = connection.ops.quote_name(TaskRun._meta.db_table)
    columns = ", ".join(_column(field.name) for field in _fields())
    placeholders = ", ".join(["%s"] * len(_fields()))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"


@cache
def _update_statement(vendor: str, columns: tuple[str, ...], announce: bool, condition: str) -> str:
    table = connection.ops.quote_name(TaskRun._meta.db_table)
    assignments = ", ".join(f"{_column(name)} = %s" for name in columns)
    key = _column("id")
    update = f"UPDATE {table} SET {assignments} WHERE {key} = %s"
    if condition:
        names = ("finished_at", "reconciled_at", "cancelled_at", "worker")
        update += " AND " + condition.format(**{name: _column(name) for name in names})
    if announce:
        return (
            f"WITH finished AS ({update} RETURNING {key}) "
            f"SELECT pg_notify('{RUN_FINISHED_CHANNEL}', {key}) FROM finished"
        )
    return update
