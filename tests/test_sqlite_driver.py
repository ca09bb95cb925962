"""core/db/sqlite_driver: SQLAlchemy's aiosqlite dialect on one thread trip per statement.

The driver is SQLite's own, so these run on SQLite only; every store test in test_stores.py
runs through it as well (and on PostgreSQL through asyncpg).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db import sqlite_driver
from core.db.access import Database
from core.db.engine import create_engine

_META = MetaData()
_ITEMS = Table(
    "items",
    _META,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(_META.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the functions sent to the connection's thread, in order."""
    sent: list[str] = []
    original = sqlite_driver.OneHopConnection._execute

    async def counting(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(sqlite_driver.OneHopConnection, "_execute", counting)
    return sent


async def test_the_engine_connects_through_the_one_hop_driver(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        assert isinstance(raw.driver_connection, sqlite_driver.OneHopConnection)
        pragma = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar_one()
    assert pragma == "wal"  # the engine's connect hook ran through the new cursor too


async def test_a_select_is_one_trip_and_a_write_two(engine: AsyncEngine, trips: list[str]) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(_ITEMS), [{"name": "a"}, {"name": "b"}])
    assert trips == ["_run_many", "commit"]
    trips.clear()
    async with engine.connect() as conn:
        rows = (await conn.execute(select(_ITEMS.c.name).order_by(_ITEMS.c.id))).all()
    assert [r.name for r in rows] == ["a", "b"]
    # no trip to open a cursor, fetch, close it or roll back a transaction that never began
    assert trips == ["_run"]


async def test_rows_rowcount_and_lastrowid(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await conn.execute(insert(_ITEMS).values(name="x"))
        assert first.inserted_primary_key == (1,)
        await conn.execute(insert(_ITEMS), [{"name": f"n{i}"} for i in range(300)])
        changed = await conn.execute(
            update(_ITEMS).where(_ITEMS.c.name.like("n1%")).values(name=_ITEMS.c.name + "!")
        )
        assert changed.rowcount == 111  # n1, n10-n19, n100-n199
    async with engine.connect() as conn:
        result = await conn.execute(select(_ITEMS.c.id).order_by(_ITEMS.c.id))
        assert result.fetchone() == (1,)
        assert len(result.fetchmany(10)) == 10
        assert len(result.fetchall()) == 301 - 11


async def test_a_failed_transaction_rolls_back_everything(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert(_ITEMS).values(name="kept?"))
            await conn.execute(insert(_ITEMS).values(name="kept?"))  # unique name
    async with engine.connect() as conn:
        assert (await conn.execute(select(_ITEMS))).all() == []


async def test_sql_errors_surface_as_sqlalchemy_errors(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        with pytest.raises(OperationalError, match="no such table"):
            await conn.exec_driver_sql("SELECT * FROM missing")
        # the connection is still usable afterwards
        assert (await conn.exec_driver_sql("SELECT 41 + 1")).scalar_one() == 42


async def test_orm_sessions_work_through_it(engine: AsyncEngine) -> None:
    database = Database(engine)
    async with database.session() as db, db.begin():
        await db.execute(insert(_ITEMS).values(name="orm"))
    async with database.session() as db:
        assert (await db.execute(select(_ITEMS.c.name))).scalar_one() == "orm"
