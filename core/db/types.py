"""Portable column types shared by SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both databases.

    SQLite keeps no zone, so values are normalised to UTC on the way in and marked UTC on the
    way out; PostgreSQL stores ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        utc: datetime = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A time-ordered UUID (version 7 layout) so inserts append to the primary-key index."""
    return new_ids(1)[0]


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` version-7 UUIDs from one clock read and one call for randomness.

    Bulk inserts make an id per row, so this skips ``UUID.__init__``'s argument checks
    (the value is built valid by construction), which costs more than the insert itself.
    """
    ms = (time.time_ns() // 1_000_000) & ((1 << 48) - 1)
    head = (ms << 80) | (0x7 << 76)
    noise = os.urandom(10 * count)
    out = []
    for k in range(count):
        rand = int.from_bytes(noise[10 * k : 10 * k + 10], "big")
        value = head | (((rand >> 64) & 0xFFF) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
        item = object.__new__(uuid.UUID)
        object.__setattr__(item, "int", value)
        object.__setattr__(item, "is_safe", uuid.SafeUUID.unknown)
        out.append(item)
    return out
