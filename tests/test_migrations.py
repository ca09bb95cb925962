"""The migrations build the schema, round-trip, and match the models exactly."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from core.db import migrate
from core.db.engine import create_engine
from core.db.models import Base


async def _diff(url: str) -> list[object]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    assert await _diff(database_url) == []


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    expected = set(Base.metadata.tables)
    assert expected <= await _tables(database_url)
    await asyncio.to_thread(migrate.downgrade, database_url, "base")
    assert await _tables(database_url) <= {"alembic_version"}
    await asyncio.to_thread(migrate.upgrade, database_url)
    assert expected <= await _tables(database_url)
    assert await _diff(database_url) == []
    engine = create_engine(database_url)
    try:
        assert await migrate.current_revision(engine) == migrate.head_revision()
        async with engine.connect() as conn:
            plans = (await conn.execute(text("SELECT name FROM plans WHERE is_default"))).all()
        assert [p[0] for p in plans] == ["default"]
    finally:
        await engine.dispose()


async def test_sqlite_pragmas_are_applied(tmp_path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/p.db")
    try:
        async with engine.connect() as conn:
            got = {
                name: (await conn.execute(text(f"PRAGMA {name}"))).scalar()
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                    "cache_size",
                    "temp_store",
                )
            }
    finally:
        await engine.dispose()
    assert got == {
        "journal_mode": "wal",
        "synchronous": 1,
        "foreign_keys": 1,
        "busy_timeout": 10000,
        "cache_size": -64000,
        "temp_store": 2,
    }


@pytest.mark.parametrize(
    "url",
    ["mysql://root@localhost/x", "not a url", "postgresql+psycopg2://u@h/db"],
)
def test_bad_database_url_is_refused_with_a_clear_message(url: str) -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        create_engine(url)
    assert "DATABASE_URL" in err.value.user_message
