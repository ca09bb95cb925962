"""Retention on SQLite and PostgreSQL, with a fixed clock: boundaries, overrides, batches."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import event, insert, select, update

from core.db.conversation import ConversationStore
from core.db.knowledge import KnowledgeStore
from core.db.models import (
    Document,
    Message,
    ProcessedEvent,
    Session,
    TokenUsage,
    TokenUsageArchive,
    Upload,
)
from core.db.records import MessageInput, UploadInput
from core.db.types import new_id
from core.db.usage import UsageStore
from core.jobs.retention import Retention, RetentionPolicy
from tests.jobs.data import NOW, add_events, count, usage, world

DAY = timedelta(days=1)


def clock():
    return NOW


async def _session(w, thread: str, *, channel=None, last_activity=NOW):
    sess = await w.ids.session(w.workspace, channel or w.channel, thread)
    return sess.id


async def _set_activity(database, session_id, when) -> None:
    async with database.session() as db, db.begin():
        await db.execute(
            update(Session).where(Session.id == session_id).values(last_activity_at=when)
        )


async def _messages(database, session_id, ages: list[timedelta]) -> list:
    store = ConversationStore(database)
    return await store.add_messages(
        [
            MessageInput(session_id=session_id, role="user", content=f"m{i}", created_at=NOW - age)
            for i, age in enumerate(ages)
        ]
    )


async def test_rows_at_89_days_stay_and_at_91_days_go(database) -> None:
    w = await world(database)
    active = await _session(w, "active")
    stale = await _session(w, "stale")
    kept = await _messages(database, active, [89 * DAY, DAY])
    gone = await _messages(database, active, [91 * DAY])
    await _set_activity(database, active, NOW - 89 * DAY)
    await _set_activity(database, stale, NOW - 91 * DAY)
    await add_events(database, [NOW - 6 * DAY, NOW - 8 * DAY])

    report = await Retention(database, clock=clock).run()

    assert report.messages == 1 and report.sessions == 1 and report.processed_events == 1
    assert await count(database, Message, Message.id.in_(kept)) == 2
    assert await count(database, Message, Message.id.in_(gone)) == 0
    assert await count(database, Session, Session.id == active) == 1
    assert await count(database, Session, Session.id == stale) == 0
    assert await count(database, ProcessedEvent) == 1
    # a second run finds nothing more
    assert sum((await Retention(database, clock=clock).run()).counts().values()) == 0


async def test_token_usage_is_archived_at_365_days(database) -> None:
    w = await world(database)
    boundary = NOW - 365 * DAY
    await UsageStore(database).record_many(
        [
            usage(w, boundary, prompt_tokens=1),  # exactly 365 days: kept
            usage(w, boundary - timedelta(microseconds=1), prompt_tokens=2, model=None),
            usage(w, NOW - 400 * DAY, prompt_tokens=3, user_id=None, channel_id=None),
            usage(w, NOW - 364 * DAY, prompt_tokens=4),
        ]
    )
    before = {r.id: r for r in await _all(database, TokenUsage)}

    report = await Retention(database, clock=clock).run()

    assert report.token_usage_archived == 2
    left = {r.prompt_tokens for r in await _all(database, TokenUsage)}
    assert left == {1, 4}
    archived = await _all(database, TokenUsageArchive)
    assert {a.prompt_tokens for a in archived} == {2, 3}
    for a in archived:  # a faithful copy, id included
        original = before[a.id]
        for column in ("workspace_id", "user_id", "channel_id", "model", "cost", "created_at"):
            assert getattr(a, column) == getattr(original, column)


async def _all(database, model) -> list:
    async with database.session() as db:
        return list((await db.execute(select(model))).scalars())


async def _upload(database, knowledge, *, document_id, age, path=None, status="completed"):
    upload_id = await knowledge.create_upload(
        UploadInput(original_filename="f.txt", status=status, stored_path=path)
    )
    async with database.session() as db, db.begin():
        await db.execute(
            update(Upload)
            .where(Upload.id == upload_id)
            .values(document_id=document_id, completed_at=NOW - age)
        )
    return upload_id


async def _document(database, namespace_id) -> object:
    doc_id = new_id()
    async with database.session() as db, db.begin():
        await db.execute(
            insert(Document),
            [
                {
                    "id": doc_id,
                    "namespace_id": namespace_id,
                    "title": "doc",
                    "file_hash": doc_id.hex,
                    "status": "indexed",
                    "created_at": NOW - 400 * DAY,
                }
            ],
        )
    return doc_id


async def test_uploads_go_after_30_days_with_their_file_not_the_document(database, tmp_path):
    w = await world(database)
    knowledge = KnowledgeStore(database)
    ns = await knowledge.ensure_namespace(w.workspace, "docs")
    doc = await _document(database, ns.id)
    old_file, new_file = tmp_path / "old.bin", tmp_path / "new.bin"
    old_file.write_bytes(b"x")
    new_file.write_bytes(b"y")
    old = await _upload(database, knowledge, document_id=doc, age=31 * DAY, path=str(old_file))
    new = await _upload(database, knowledge, document_id=doc, age=29 * DAY, path=str(new_file))
    failed = await _upload(database, knowledge, document_id=None, age=60 * DAY, status="failed")
    missing = await _upload(
        database, knowledge, document_id=None, age=60 * DAY, path=str(tmp_path / "gone")
    )

    report = await Retention(database, clock=clock).run()

    assert (report.uploads, report.files) == (2, 1)
    assert not old_file.exists() and new_file.exists()
    remaining = set(await _ids(database, Upload))
    assert remaining == {new, failed} and old not in remaining and missing not in remaining
    assert await count(database, Document, Document.id == doc) == 1


async def _ids(database, model) -> list:
    async with database.session() as db:
        return list((await db.execute(select(model.id))).scalars())


async def test_namespace_overrides_apply_to_channels_and_uploads(database) -> None:
    w = await world(database)
    knowledge = KnowledgeStore(database)
    short = await knowledge.ensure_namespace(w.workspace, "hr")
    long = await knowledge.ensure_namespace(w.workspace, "legal")
    await knowledge.update_namespace_config(
        short.id, {"retention_days": 30, "upload_retention_days": 7}
    )
    await knowledge.update_namespace_config(long.id, {"retention_days": 200})
    hr = (await w.ids.channel(w.workspace, "C-hr")).id
    legal = (await w.ids.channel(w.workspace, "C-legal")).id
    both = (await w.ids.channel(w.workspace, "C-both")).id
    await knowledge.bind(hr, short.id)
    await knowledge.bind(legal, long.id)
    await knowledge.bind(both, short.id)
    await knowledge.bind(both, long.id)
    sessions_by_channel = {
        name: await _session(w, name, channel=ch)
        for name, ch in (("plain", w.channel), ("hr", hr), ("legal", legal), ("both", both))
    }
    ages = [31 * DAY, 100 * DAY]
    made = {name: await _messages(database, sid, ages) for name, sid in sessions_by_channel.items()}
    hr_doc = await _document(database, short.id)
    hr_upload = await _upload(database, knowledge, document_id=hr_doc, age=8 * DAY)
    plain_upload = await _upload(database, knowledge, document_id=None, age=8 * DAY)

    await Retention(database, clock=clock).run()

    async def kept(name):
        return await count(database, Message, Message.id.in_(made[name]))

    assert await kept("plain") == 1  # default 90 days: the 100-day message goes
    assert await kept("hr") == 0  # 30 days
    assert await kept("legal") == 2  # 200 days keeps both
    assert await kept("both") == 0  # the shortest override wins
    assert set(await _ids(database, Upload)) == {plain_upload}
    assert hr_upload not in await _ids(database, Upload)


async def test_100k_rows_are_deleted_in_batches(indexed_engine, database) -> None:
    w = await world(database)
    sid = await _session(w, "big")
    store = ConversationStore(database)
    old = NOW - 120 * DAY
    for _ in range(5):
        await store.add_messages(
            [
                MessageInput(session_id=sid, role="user", content="old", created_at=old)
                for _ in range(20_000)
            ]
        )
    await _messages(database, sid, [DAY] * 10)
    deletes: list[int] = []

    def on_execute(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("DELETE FROM MESSAGES"):
            deletes.append(cursor.rowcount)

    event.listen(indexed_engine.sync_engine, "after_cursor_execute", on_execute)
    try:
        policy = RetentionPolicy(batch_size=5000, pause_ratio=0)
        report = await Retention(database, clock=clock, policy=policy).run()
    finally:
        event.remove(indexed_engine.sync_engine, "after_cursor_execute", on_execute)
    assert report.messages == 100_000
    assert await count(database, Message) == 10
    # 20 full batches of 5,000 (each its own transaction) and one that finds nothing
    assert deletes == [5000] * 20 + [0]
