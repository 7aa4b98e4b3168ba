"""Outcomes and durations of runs, summed so that any number of hours adds up in constant space.

Durations are counted in buckets whose bounds grow by √2 from 1 ms (the last bucket holds
everything from about 1.7 hours up); a percentile is read off the bucket it falls in, at the
bucket's geometric middle, so it is within about 19 % of the exact value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lime_task.status import State

FIRST_BOUND = 0.001  # seconds
RATIO = math.sqrt(2)
BUCKETS = 44  # 1 ms · √2⁴² ≈ 1.7 h


def bucket_of(seconds: float) -> int:
    if seconds <= FIRST_BOUND:
        return 0
    return min(BUCKETS - 1, 1 + int(math.log(seconds / FIRST_BOUND, RATIO)))


def bucket_middle(index: int) -> float:
    """A representative duration of a bucket, in seconds."""
    if index == 0:
        return FIRST_BOUND / 2
    low = FIRST_BOUND * RATIO ** (index - 1)
    return low * math.sqrt(RATIO)


@dataclass
class Outcomes:
    succeeded: int = 0
    failed: int = 0
    other: int = 0
    durations: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.other

    @property
    def success_rate(self) -> float | None:
        """Successes among runs that succeeded or failed (cancelled and skipped left out)."""
        decided = self.succeeded + self.failed
        return self.succeeded / decided if decided else None

    def add_run(self, status: str, seconds: float | None) -> None:
        if status == State.SUCCESS:
            self.succeeded += 1
        elif status == State.FAILURE:
            self.failed += 1
        else:
            self.other += 1
        if seconds is not None and seconds >= 0:
            self.durations[bucket_of(seconds)] += 1

    def add(self, other: Outcomes) -> None:
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.other += other.other
        for index, count in enumerate(other.durations[:BUCKETS]):
            self.durations[index] += count

    def percentile(self, fraction: float) -> float | None:
        total = sum(self.durations)
        if not total:
            return None
        wanted = fraction * total
        seen = 0
        for index, count in enumerate(self.durations):
            seen += count
            if seen >= wanted:
                return bucket_middle(index)
        return bucket_middle(BUCKETS - 1)

    @classmethod
    def from_row(cls, succeeded: int, failed: int, other: int, durations: Any) -> Outcomes:
        counts = list(durations or [])[:BUCKETS]
        return cls(succeeded, failed, other, counts + [0] * (BUCKETS - len(counts)))


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    hours, hour = [], floor_hour(start)
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def group_hours(
    hours: list[tuple[datetime, Outcomes]], *, width: int
) -> list[tuple[datetime, Outcomes]]:
    """An hourly series summed into bins of ``width`` hours, aligned in UTC (a bin starts at a
    multiple of ``width`` hours since the epoch); each bin keeps the start of its first hour."""
    bins: dict[int, tuple[datetime, Outcomes]] = {}
    for hour, outcomes in hours:
        key = int(hour.timestamp()) // (width * 3600)
        if key not in bins:
            bins[key] = (hour, Outcomes())
        bins[key][1].add(outcomes)
    return list(bins.values())
