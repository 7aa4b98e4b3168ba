"""Run history in bulk, in one INSERT … SELECT over ``generate_series``, for the benchmarks that
measure at a million runs.

Only the columns a benchmark cares about are written out; every other NOT NULL column gets the
model's default, so a column added later does not break the fill (it broke once, silently, for
lack of a run). A NOT NULL column with no default at all is reported by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.db import connection
from django.db.models import CharField, TextField

from limepkg_task_starter.models import TaskRun


def insert_runs(columns: Mapping[str, str], params: Sequence[object], count: int) -> None:
    """Insert ``count`` runs; ``columns`` maps a column to an SQL expression of ``i`` (1 to
    ``count``), whose ``%s`` placeholders take ``params`` in order (write ``%%`` for ``%``)."""
    expressions = dict(columns)
    values = list(params)
    for field in TaskRun._meta.concrete_fields:
        if field.column in expressions or field.null or field.has_db_default():
            continue
        if field.has_default():
            value = field.get_db_prep_save(field.get_default(), connection)
        elif field.blank and isinstance(field, CharField | TextField):
            value = ""
        else:
            raise ValueError(f"the benchmark fill needs a value for {field.column} (NOT NULL)")
        expressions[field.column] = "%s"
        values.append(value)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TaskRun._meta.db_table} ({', '.join(expressions)}) "
            f"SELECT {', '.join(expressions.values())} FROM generate_series(1, %s) AS i",
            [*values, count],
        )
