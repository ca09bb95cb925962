"""One runner per job: a PostgreSQL advisory lock, so several bot processes run a job once.

Each attempt takes ``pg_try_advisory_lock`` on a connection of its own, held for the whole
run and released (or dropped with the connection) afterwards. On SQLite there is one process
by design, so the lock is always granted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)

LOCK_PREFIX = "lorekeeper.job:"


class JobLock(Protocol):
    """Grants at most one holder per job name at a time."""

    def hold(self, job: str) -> AbstractAsyncContextManager[bool]:
        """Yield True while this process holds the job's lock, False when another does."""
        ...


def lock_key(job: str) -> int:
    """A stable signed 64-bit key for ``job`` (the same in every process and version)."""
    digest = hashlib.sha256((LOCK_PREFIX + job).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class AdvisoryLock:
    """``pg_try_advisory_lock`` per job on PostgreSQL; always granted on SQLite."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @asynccontextmanager
    async def hold(self, job: str) -> AsyncIterator[bool]:
        if self._engine.dialect.name != "postgresql":
            yield True
            return
        key = lock_key(job)
        async with self._engine.connect() as conn:
            got = await _try_lock(conn, key)
            if not got:
                yield False
                return
            try:
                yield True
            finally:
                await _unlock(conn, key)


async def _try_lock(conn: AsyncConnection, key: int) -> bool:
    result = await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
    got = bool(result.scalar_one())
    await conn.commit()  # the lock is session-level: it outlives the transaction
    return got


async def _unlock(conn: AsyncConnection, key: int) -> None:
    try:
        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        await conn.commit()
    except BaseException:
        # A connection that may still hold the lock must never go back to the pool:
        # closing it ends the database session, which releases the lock.
        log.warning("advisory unlock failed; dropping the connection", exc_info=True)
        await conn.invalidate()
        raise
