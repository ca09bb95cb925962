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


async def test_0005_keeps_every_row_and_backfills_owners(database_url: str) -> None:
    """Rebuilding tables on SQLite must not cascade into their children; documents take their
    uploader and platform file id from their upload row."""
    import uuid
    from datetime import UTC, datetime

    await asyncio.to_thread(migrate.downgrade, database_url, "0004")
    now = datetime.now(UTC)
    ids = {k: uuid.uuid4() for k in ("ws", "user", "channel", "ns", "doc", "chunk", "upload")}
    rows = [
        ("workspaces", {"id": ids["ws"], "platform": "slack", "external_id": "T1"}),
        (
            "users",
            {
                "id": ids["user"],
                "workspace_id": ids["ws"],
                "external_id": "U1",
                "role": "user",
                "is_active": True,
            },
        ),
        ("channels", {"id": ids["channel"], "workspace_id": ids["ws"], "external_id": "C1"}),
        ("namespaces", {"id": ids["ns"], "workspace_id": ids["ws"], "name": "team", "config": {}}),
        (
            "channel_namespaces",
            {"channel_id": ids["channel"], "namespace_id": ids["ns"], "receives_uploads": True},
        ),
        (
            "documents",
            {
                "id": ids["doc"],
                "namespace_id": ids["ns"],
                "title": "a.md",
                "file_hash": "0" * 64,
                "status": "indexed",
                "size_bytes": 1,
                "chunk_count": 1,
                "token_count": 1,
            },
        ),
        (
            "chunks",
            {
                "id": ids["chunk"],
                "document_id": ids["doc"],
                "chunk_index": 0,
                "content": "x",
                "content_hash": "0" * 64,
                "start_offset": 0,
                "end_offset": 1,
            },
        ),
        (
            "uploads",
            {
                "id": ids["upload"],
                "user_id": ids["user"],
                "document_id": ids["doc"],
                "original_filename": "a.md",
                "platform_file_id": "F1",
                "size_bytes": 1,
                "status": "completed",
            },
        ),
    ]
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for name, values in rows:
                table = Base.metadata.tables[name]
                if "created_at" in table.c:
                    values = {**values, "created_at": now}
                await conn.execute(table.insert().values(**values))
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with engine.connect() as conn:
            for name, values in rows:
                table = Base.metadata.tables[name]
                key = table.c.id if "id" in table.c else table.c.channel_id
                found = (
                    await conn.execute(table.select().where(key == next(iter(values.values()))))
                ).all()
                assert len(found) == 1, name
            doc = (
                await conn.execute(text("SELECT uploaded_by, platform_file_id FROM documents"))
            ).one()
            plan = (
                await conn.execute(
                    text("SELECT user_daily_upload_tokens FROM plans WHERE is_default")
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert (uuid.UUID(str(doc[0])), doc[1]) == (ids["user"], "F1")
    assert plan == 2_000_000
