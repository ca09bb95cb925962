"""aiosqlite with one thread hop per statement, for SQLAlchemy's ``sqlite+aiosqlite`` dialect.

aiosqlite runs every call on its connection's thread and hands the result back to the event
loop: SQLAlchemy's adapter makes four such round trips for one SELECT (open a cursor, execute,
fetch, close) plus one for the commit and one for the rollback when the pooled connection is
returned. Each round trip wakes the worker thread and the loop and passes the GIL twice, which
cost more than the statement itself (bench/concurrency.py).

Here a cursor is a plain object on the loop's side: ``execute`` runs the statement *and* reads
its rows in one trip, and the cursor, ``fetch*`` and ``close`` calls need none. ``commit`` and
``rollback`` are skipped when SQLite has no transaction open (a read-only statement opens none
under the driver's default transaction handling), which the connection reports without a trip.

It subclasses ``aiosqlite.Connection`` and uses its queue (``_execute``, ``_conn``), so the
dialect sees the driver it expects; pyproject pins the aiosqlite versions this was checked on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import aiosqlite

_Outcome = tuple[Any, list[Any], int, int | None]


def _run(conn: sqlite3.Connection, sql: str, parameters: Any) -> _Outcome:
    cursor = conn.execute(sql, parameters) if parameters is not None else conn.execute(sql)
    try:
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


def _run_many(conn: sqlite3.Connection, sql: str, seq: Iterable[Any]) -> _Outcome:
    cursor = conn.executemany(sql, seq)
    try:
        return cursor.description, [], cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneHopCursor:
    """The part of ``aiosqlite.Cursor`` that SQLAlchemy's adapter uses, one trip per execute."""

    __slots__ = ("_db", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, db: OneHopConnection) -> None:
        self._db = db
        self._rows: list[Any] = []
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    async def __aenter__(self) -> OneHopCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._rows = []

    def _take(self, outcome: _Outcome) -> OneHopCursor:
        self.description, self._rows, self.rowcount, self.lastrowid = outcome
        return self

    async def execute(self, sql: str, parameters: Any = None) -> OneHopCursor:
        return self._take(await self._db.run(_run, sql, parameters))

    async def executemany(self, sql: str, seq: Iterable[Any]) -> OneHopCursor:
        return self._take(await self._db.run(_run_many, sql, seq))

    async def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows

    async def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        size = self.arraysize if size is None else size
        rows, self._rows = self._rows[:size], self._rows[size:]
        return rows

    async def close(self) -> None:
        self._rows = []


class OneHopConnection(aiosqlite.Connection):
    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._thread.daemon = True  # as SQLAlchemy sets it for plain aiosqlite connections

    async def run(self, fn: Callable[..., _Outcome], *args: Any) -> _Outcome:
        """``fn(sqlite3_connection, *args)`` on the connection's thread."""
        return await self._execute(fn, self._conn, *args)  # type: ignore[no-untyped-call,no-any-return]

    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)

    async def commit(self) -> None:
        if self._conn.in_transaction:
            await super().commit()

    async def rollback(self) -> None:
        if self._conn.in_transaction:
            await super().rollback()


def connect(database: str, **kwargs: Any) -> OneHopConnection:
    """What ``aiosqlite.connect`` is for the dialect (its ``async_creator_fn``): the same
    arguments, given to ``sqlite3.connect`` on the connection's thread."""
    return OneHopConnection(lambda: sqlite3.connect(database, **kwargs))
