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


async def test_0007_keeps_usage_days_without_raw_rows_and_rerolls_the_rest(
    database_url: str,
) -> None:
    """daily_usage gains an operation key: days whose raw rows are gone keep their totals;
    days whose raw rows are all here are rolled up again, by operation."""
    import uuid
    from datetime import UTC, date, datetime

    from core.jobs.rollup import UsageRollup
    from core.reports import ReportService

    await asyncio.to_thread(migrate.downgrade, database_url, "0006")
    ws = uuid.uuid4()
    purged, first_raw, later = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                Base.metadata.tables["workspaces"]
                .insert()
                .values(id=ws, platform="slack", external_id="T1", created_at=datetime.now(UTC))
            )
            for day, requests in ((purged, 5), (first_raw, 1), (later, 1)):
                await conn.execute(
                    text(
                        "INSERT INTO daily_usage (id, day, workspace_id, model, requests, "
                        "prompt_tokens, completion_tokens, embedding_tokens, cost) VALUES "
                        "(:id, :day, :ws, 'llama', :requests, 10, 1, 0, 0)"
                    ),
                    {"id": uuid.uuid4().hex, "day": day, "ws": ws.hex, "requests": requests},
                )
            for day in (first_raw, later):
                await conn.execute(
                    Base.metadata.tables["token_usage"]
                    .insert()
                    .values(
                        id=uuid.uuid4(),
                        workspace_id=ws,
                        operation="chat",
                        model="llama",
                        prompt_tokens=10,
                        completion_tokens=1,
                        embedding_tokens=0,
                        cost=0,
                        created_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC),
                    )
                )
        await asyncio.to_thread(migrate.upgrade, database_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT day, operation, requests FROM daily_usage"))
            ).all()
        # the purged day and the first raw day (maybe partly purged) stay; the later goes
        assert sorted((str(d), o, r) for d, o, r in rows) == [
            (str(purged), "", 5),
            (str(first_raw), "", 1),
        ]
        from core.db.access import Database

        database = Database(engine)
        clock = lambda: datetime(2026, 3, 5, tzinfo=UTC)  # noqa: E731
        assert await UsageRollup(database, clock=clock).pending_days() == [
            later,
            date(2026, 3, 4),
        ]
        await UsageRollup(database, clock=clock).backfill()
        report = await ReportService(database).usage(
            None,
            since=datetime(2026, 3, 1, tzinfo=UTC),
            until=datetime(2026, 3, 5, tzinfo=UTC),
            by="operation",
        )
        assert {r.key: r.prompt_tokens for r in report.rows} == {"(none)": 20, "chat": 10}
    finally:
        await engine.dispose()


async def test_0010_keeps_every_document_and_takes_its_place_from_its_session(
    database_url: str,
) -> None:
    """Documents gain the channel and thread they were uploaded in, from their session when it
    is still there; rebuilding the table on SQLite keeps every document and chunk."""
    import uuid
    from datetime import UTC, datetime

    await asyncio.to_thread(migrate.downgrade, database_url, "0009")
    now = datetime.now(UTC)
    ids = {k: uuid.uuid4() for k in ("ws", "channel", "session", "ns", "kept", "orphan", "chunk")}
    rows = [
        ("workspaces", {"id": ids["ws"], "platform": "discord", "external_id": "G1"}),
        ("channels", {"id": ids["channel"], "workspace_id": ids["ws"], "external_id": "C1"}),
        (
            "sessions",
            {
                "id": ids["session"],
                "workspace_id": ids["ws"],
                "channel_id": ids["channel"],
                "thread_key": "T1",
                "last_activity_at": now,
                "is_active": True,
            },
        ),
        ("namespaces", {"id": ids["ns"], "workspace_id": ids["ws"], "name": "team", "config": {}}),
        *(
            (
                "documents",
                {
                    "id": ids[key],
                    "namespace_id": ids["ns"],
                    "title": f"{key}.md",
                    "file_hash": str(n) * 64,
                    "status": "indexed",
                    "size_bytes": 1,
                    "chunk_count": 1,
                    "token_count": 1,
                    "session_id": session,
                },
            )
            for n, (key, session) in enumerate((("kept", ids["session"]), ("orphan", None)))
        ),
        (
            "chunks",
            {
                "id": ids["chunk"],
                "document_id": ids["kept"],
                "chunk_index": 0,
                "content": "x",
                "content_hash": "0" * 64,
                "start_offset": 0,
                "end_offset": 1,
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
                found = (await conn.execute(table.select().where(table.c.id == values["id"]))).all()
                assert len(found) == 1, name
            documents = Base.metadata.tables["documents"]
            places = (
                await conn.execute(
                    documents.select()
                    .with_only_columns(
                        documents.c.title, documents.c.channel_id, documents.c.thread_key
                    )
                    .order_by(documents.c.title)
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(p) for p in places] == [
        ("kept.md", ids["channel"], "T1"),
        ("orphan.md", None, None),
    ]
