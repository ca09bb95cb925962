"""The clock the jobs read: injectable so tests can travel in time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime."""


def system_clock() -> datetime:
    """The real time, UTC."""
    return datetime.now(UTC)


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime.combine(day, time(0), tzinfo=UTC)


def day_range(day: date) -> tuple[datetime, datetime]:
    """[midnight, next midnight) of ``day`` in UTC."""
    start = day_start(day)
    return start, start + timedelta(days=1)
