"""Declaring scheduled tasks in code: ``CronTab``, ``TaskSession`` and ``ScheduledTask``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from celery.schedules import crontab


class CronTab(crontab):
    """Celery's crontab: fields left out mean every value, and ``day_of_week`` 0 is Sunday."""

    def __init__(
        self,
        minute: str | int = "*",
        hour: str | int = "*",
        day_of_week: str | int = "*",
        day_of_month: str | int = "*",
        month_of_year: str | int = "*",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            minute=minute,
            hour=hour,
            day_of_week=day_of_week,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            **kwargs,
        )
        self.expression = {
            "minute": str(minute),
            "hour": str(hour),
            "day_of_week": str(day_of_week),
            "day_of_month": str(day_of_month),
            "month_of_year": str(month_of_year),
        }


@dataclass(frozen=True)
class TaskSession:
    """Who a scheduled task runs as, and in which language."""

    user_name: str
    language: str = "en"


SessionTask = TaskSession


@dataclass(frozen=True)
class ScheduledTask:
    task: Callable[..., Any]
    session: TaskSession
    schedule: CronTab
    args: Sequence[Any] = field(default_factory=list)

    @property
    def task_name(self) -> str:
        return str(getattr(self.task, "name", ""))
