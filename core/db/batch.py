"""Group commit for single-statement writes (see ``StatementBatcher``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from core.batching import Coalescer, Failed

WRITE_BATCH = 64  # statements that share one transaction at most
_Write = tuple[Executable, dict[str, Any], bool]  # statement, parameters, returns rows


class StatementBatcher:
    """Single-statement writes that arrive while a transaction is running share the next one.

    Each write is one statement (an insert-or-ignore, an ``INSERT ... RETURNING``). A burst of
    questions would otherwise pay a transaction for each (a pooled connection, a commit, and on
    SQLite a turn on the one writer connection) for one row each. The statements of a batch run
    one after another in one transaction, each with its own result, in arrival order; when that
    transaction fails, each runs again in a transaction of its own, so a failing write fails
    alone (PostgreSQL aborts a whole transaction at its first error).
    """

    def __init__(self, engine: AsyncEngine, *, max_batch: int = WRITE_BATCH) -> None:
        self._engine = engine
        self._writes: Coalescer[tuple[()], _Write, Any] = Coalescer(self._run, max_batch=max_batch)

    async def rowcount(self, stmt: Executable, params: dict[str, Any]) -> int:
        """Rows the statement changed (an insert-or-ignore: 0 when the key existed)."""
        return int(await self._writes.submit((), (stmt, params, False)))

    async def first(self, stmt: Executable, params: dict[str, Any]) -> Any:
        """The first row the statement returned (``RETURNING``), or None."""
        return await self._writes.submit((), (stmt, params, True))

    async def _run(self, _key: tuple[()], writes: list[_Write]) -> list[Any]:
        try:
            async with self._engine.begin() as conn:
                return [await _execute(conn, w) for w in writes]
        except Exception as exc:
            if len(writes) == 1:
                return [Failed(exc)]
        return [await self._alone(w) for w in writes]

    async def _alone(self, write: _Write) -> Any:
        try:
            async with self._engine.begin() as conn:
                return await _execute(conn, write)
        except Exception as exc:
            return Failed(exc)


async def _execute(conn: AsyncConnection, write: _Write) -> Any:
    stmt, params, returning = write
    result = await conn.execute(stmt, params)
    return result.first() if returning else getattr(result, "rowcount", 0)
