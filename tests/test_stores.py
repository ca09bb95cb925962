"""Stores on SQLite and PostgreSQL: get-or-create under concurrency, cascades, uniqueness."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from core.db.conversation import ConversationStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.models import (
    ChannelNamespace,
    Chunk,
    Citation,
    Document,
    Message,
    Namespace,
    ProcessedEvent,
    Session,
    TokenUsage,
    User,
    Workspace,
)
from core.db.records import CitationInput, MessageInput, UsageInput
from core.db.types import new_id, utcnow
from core.db.usage import UsageStore


async def _count(database, model, *where) -> int:
    async with database.session() as db:
        return (
            await db.execute(select(func.count()).select_from(model).where(*where))
        ).scalar_one()


async def _thread(database):
    ids = IdentityStore(database)
    ws = await ids.workspace("slack", "T1", name="Acme")
    ch = await ids.channel(ws.id, "C1", name="general")
    user = await ids.user(ws.id, "U1", display_name="Ada")
    sess = await ids.session(ws.id, ch.id, "1700000000.0001", title="first question")
    return ids, ws, ch, user, sess


async def test_get_or_create_returns_the_same_rows(database) -> None:
    ids, ws, ch, user, sess = await _thread(database)
    assert (await ids.workspace("slack", "T1")).id == ws.id
    assert (await ids.channel(ws.id, "C1")).id == ch.id
    assert (await ids.user(ws.id, "U1")).id == user.id
    assert (await ids.session(ws.id, ch.id, "1700000000.0001")).id == sess.id
    # the same external id on another platform is another workspace
    assert (await ids.workspace("discord", "T1")).id != ws.id
    assert user.role == "user" and user.is_active


async def test_a_role_change_is_seen_at_once_despite_the_cache(database) -> None:
    ids, ws, _, user, _ = await _thread(database)
    assert (await ids.user(ws.id, "U1")).role == "user"  # now cached
    await ids.set_role(user.id, "admin")
    assert (await ids.user(ws.id, "U1")).role == "admin"
    assert (await ids.workspace("slack", "T1")).id == ws.id  # other entries stay


async def test_fifty_concurrent_calls_for_one_thread_give_one_row(database) -> None:
    ids = IdentityStore(database)
    ws = await ids.workspace("slack", "T9")
    ch = await ids.channel(ws.id, "C9")
    results = await asyncio.gather(*(ids.session(ws.id, ch.id, "thread-42") for _ in range(50)))
    assert len({r.id for r in results}) == 1
    assert await _count(database, Session, Session.thread_key == "thread-42") == 1
    users = await asyncio.gather(*(ids.user(ws.id, "U-same") for _ in range(50)))
    assert len({u.id for u in users}) == 1


async def test_a_new_thread_costs_one_statement_and_racers_see_one_new_session(database) -> None:
    """A new thread's session is a single INSERT ... RETURNING; when the row exists (another
    process, or a racer) it is read back, and only the caller that inserted it sees it new."""
    ids = IdentityStore(database)
    ws = await ids.workspace("slack", "T8")
    ch = await ids.channel(ws.id, "C8")
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_rest) -> None:
        statements.append(statement.split()[0])

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        first = await ids.session(ws.id, ch.id, "thread-new")
        assert statements == ["INSERT"] and first.is_new
        statements.clear()
        again = await IdentityStore(database).session(ws.id, ch.id, "thread-new")  # no cache
        assert statements == ["INSERT", "SELECT"]
        assert again.id == first.id and not again.is_new
    finally:
        event.remove(engine, "before_cursor_execute", record)
    racers = await asyncio.gather(
        *(IdentityStore(database).session(ws.id, ch.id, "thread-race") for _ in range(20))
    )
    assert len({r.id for r in racers}) == 1
    assert sum(r.is_new for r in racers) == 1


async def test_claim_event_is_false_for_a_duplicate(database) -> None:
    ids = IdentityStore(database)
    assert await ids.claim_event("slack", "Ev1") is True
    assert await ids.claim_event("slack", "Ev1") is False
    assert await ids.claim_event("discord", "Ev1") is True
    outcomes = await asyncio.gather(*(ids.claim_event("slack", "Ev2") for _ in range(20)))
    assert outcomes.count(True) == 1


async def test_a_claim_is_a_lease_until_completed(database) -> None:
    """A claim whose lease ran out uncompleted (its claimant died) is taken over by the next
    delivery, by one of many racing deliveries only; a completed one never is."""
    died = IdentityStore(database, event_lease=timedelta(seconds=-1))  # expired at once
    alive = IdentityStore(database)
    assert await died.claim_event("slack", "Ev1") is True
    racers = await asyncio.gather(*(alive.claim_event("slack", "Ev1") for _ in range(20)))
    assert racers.count(True) == 1  # taken over, with a running lease now
    assert await alive.claim_event("slack", "Ev1") is False
    assert await died.claim_event("slack", "Ev2") is True
    await died.complete_event("slack", "Ev2")
    assert await alive.claim_event("slack", "Ev2") is False  # expired, but completed
    async with database.session() as db:
        rows = {
            r.event_id: r
            for r in (await db.execute(select(ProcessedEvent))).scalars()
            if r.platform == "slack"
        }
    assert rows["Ev1"].completed_at is None and rows["Ev1"].lease_expires_at > utcnow()
    assert rows["Ev2"].completed_at is not None


async def test_message_with_citations_is_one_transaction(database) -> None:
    _, _ws, _, user, sess = await _thread(database)
    store = ConversationStore(database)
    q = await store.add_message(MessageInput(sess.id, "user", "What is X?", user_id=user.id))
    cites = (
        CitationInput(position=1, title="Doc A", quoted_text="X is a letter."),
        CitationInput(position=2, title="Doc B", quoted_text="X marks the spot."),
    )
    a = await store.add_message(
        MessageInput(
            sess.id,
            "assistant",
            "X is a letter [1][2].",
            parent_id=q.id,
            citations=cites,
            grounded=True,
            model="m",
        )
    )
    assert [c.title for c in await store.citations(a.id)] == ["Doc A", "Doc B"]
    history = await store.history(sess.id)
    assert [m.role for m in history] == ["user", "assistant"]
    # duplicate positions violate uniqueness and roll back the whole message
    bad = (CitationInput(1, "A", "q"), CitationInput(1, "B", "q"))
    with pytest.raises(IntegrityError):
        await store.add_message(MessageInput(sess.id, "assistant", "dup", citations=bad))
    assert await _count(database, Message, Message.content == "dup") == 0


async def test_session_delete_cascades_to_messages_and_citations(database) -> None:
    _, _, _, _user, sess = await _thread(database)
    store = ConversationStore(database)
    await store.add_message(
        MessageInput(sess.id, "assistant", "a", citations=(CitationInput(1, "t", "q"),))
    )
    async with database.session() as db, db.begin():
        await db.execute(delete(Session).where(Session.id == sess.id))
    assert await _count(database, Message) == 0
    assert await _count(database, Citation) == 0


async def test_user_delete_keeps_messages_with_null_user(database) -> None:
    _, _, _, user, sess = await _thread(database)
    store = ConversationStore(database)
    m = await store.add_message(MessageInput(sess.id, "user", "hello", user_id=user.id))
    async with database.session() as db, db.begin():
        await db.execute(delete(User).where(User.id == user.id))
    async with database.session() as db:
        row = (await db.execute(select(Message).where(Message.id == m.id))).scalar_one()
    assert row.user_id is None


async def test_namespace_delete_takes_documents_chunks_and_links(database) -> None:
    _, ws, ch, _, _ = await _thread(database)
    ns_id, doc_id = new_id(), new_id()
    async with database.session() as db, db.begin():
        await db.execute(
            insert(Namespace),
            [
                {
                    "id": ns_id,
                    "workspace_id": ws.id,
                    "name": "hr",
                    "config": {},
                    "created_at": utcnow(),
                }
            ],
        )
        await db.execute(
            insert(ChannelNamespace),
            [{"channel_id": ch.id, "namespace_id": ns_id, "created_at": utcnow()}],
        )
        await db.execute(
            insert(Document),
            [
                {
                    "id": doc_id,
                    "namespace_id": ns_id,
                    "title": "handbook",
                    "file_hash": "h1",
                    "status": "indexed",
                    "size_bytes": 1,
                    "chunk_count": 1,
                    "token_count": 1,
                    "created_at": utcnow(),
                }
            ],
        )
        await db.execute(
            insert(Chunk),
            [
                {
                    "id": new_id(),
                    "document_id": doc_id,
                    "chunk_index": 0,
                    "content": "c",
                    "content_hash": "x",
                    "start_offset": 0,
                    "end_offset": 1,
                }
            ],
        )
    async with database.session() as db, db.begin():
        await db.execute(delete(Namespace).where(Namespace.id == ns_id))
    for model in (Document, Chunk, ChannelNamespace):
        assert await _count(database, model) == 0


async def test_uniqueness_rules(database) -> None:
    _, ws, _, _, _ = await _thread(database)
    ns_id = new_id()
    async with database.session() as db, db.begin():
        await db.execute(
            insert(Namespace),
            [
                {
                    "id": ns_id,
                    "workspace_id": ws.id,
                    "name": "a",
                    "config": {},
                    "created_at": utcnow(),
                }
            ],
        )
    with pytest.raises(IntegrityError):
        async with database.session() as db, db.begin():
            await db.execute(
                insert(Namespace),
                [
                    {
                        "id": new_id(),
                        "workspace_id": ws.id,
                        "name": "a",
                        "config": {},
                        "created_at": utcnow(),
                    }
                ],
            )
    doc = {
        "namespace_id": ns_id,
        "title": "t",
        "file_hash": "same",
        "status": "indexed",
        "size_bytes": 1,
        "chunk_count": 0,
        "token_count": 0,
        "created_at": utcnow(),
    }
    async with database.session() as db, db.begin():
        await db.execute(insert(Document), [{"id": new_id(), **doc}])
    with pytest.raises(IntegrityError):
        async with database.session() as db, db.begin():
            await db.execute(insert(Document), [{"id": new_id(), **doc}])
    with pytest.raises(IntegrityError):  # status outside the allowed set
        async with database.session() as db, db.begin():
            await db.execute(
                insert(Document), [{"id": new_id(), **doc, "file_hash": "o", "status": "weird"}]
            )


async def test_feedback_is_one_vote_per_user_and_changeable(database) -> None:
    ids, ws, _, user, sess = await _thread(database)
    store = ConversationStore(database)
    m = await store.add_message(MessageInput(sess.id, "assistant", "answer"))
    other = await ids.user(ws.id, "U2")
    await store.set_feedback(m.id, user.id, 1)
    await store.set_feedback(m.id, user.id, 1)
    await store.set_feedback(m.id, other.id, 1)
    assert await store.feedback_totals(m.id) == (2, 0)
    await store.set_feedback(m.id, user.id, -1)
    assert await store.feedback_totals(m.id) == (1, 1)
    with pytest.raises(ValueError):
        await store.set_feedback(m.id, user.id, 5)


async def test_usage_counts_and_limits(database) -> None:
    _, ws, _ch, user, _ = await _thread(database)
    usage = UsageStore(database)
    now = utcnow()
    await usage.record_many(
        [
            UsageInput(
                ws.id,
                "chat",
                model="m",
                user_id=user.id,
                prompt_tokens=100,
                completion_tokens=20,
                cost=Decimal("0.0001234"),
                created_at=now,
            ),
            UsageInput(ws.id, "embedding", user_id=user.id, embedding_tokens=7, created_at=now),
            UsageInput(
                ws.id, "chat", user_id=None, prompt_tokens=1000, created_at=now - timedelta(days=2)
            ),
        ]
    )
    day_start = now - timedelta(hours=1)
    assert await usage.tokens_since(workspace_id=ws.id, since=day_start, user_id=user.id) == 127
    assert await usage.tokens_since(workspace_id=ws.id, since=now - timedelta(days=3)) == 1127
    async with database.session() as db:
        cost = (await db.execute(select(func.sum(TokenUsage.cost)))).scalar_one()
    assert Decimal(cost) == Decimal("0.0001234")
    limits = await usage.limits(ws.id, user.id)
    assert limits.user_daily_tokens == 200_000 and limits.workspace_daily_tokens == 2_000_000
    await usage.set_workspace_limits(ws.id, user_daily_tokens=500)
    await usage.set_user_limit(user.id, 42)
    assert (await usage.limits(ws.id, user.id)).user_daily_tokens == 42
    assert (await usage.limits(ws.id, None)).user_daily_tokens == 500
    # another workspace still has the default plan
    other = await IdentityStore(database).workspace("slack", "T-other")
    assert (await usage.limits(other.id, None)).user_daily_tokens == 200_000


async def test_workspace_delete_cascades_everywhere(database) -> None:
    _, ws, _, user, sess = await _thread(database)
    await ConversationStore(database).add_message(MessageInput(sess.id, "user", "x"))
    await UsageStore(database).record(UsageInput(ws.id, "chat", user_id=user.id))
    async with database.session() as db, db.begin():
        await db.execute(delete(Workspace).where(Workspace.id == ws.id))
    for model in (User, Session, Message, TokenUsage):
        assert await _count(database, model) == 0


def test_new_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(i.version == 7 for i in ids)
    assert len(set(ids)) == 1000
    assert isinstance(ids[0], uuid.UUID)


async def test_exchanges_finishing_together_commit_together_and_a_bad_one_fails_alone(
    database,
) -> None:
    """add_exchange group-commits a burst of answers; an exchange that breaks a constraint
    (here: duplicate citation positions) fails on its own and takes no other answer with it."""
    ids, ws, ch, user, _ = await _thread(database)
    store = ConversationStore(database)
    threads = [await ids.session(ws.id, ch.id, f"burst-{i}") for i in range(12)]
    commits: list[int] = []

    @event.listens_for(database.engine.sync_engine, "commit")
    def _on_commit(_conn) -> None:
        commits.append(1)

    def exchange(i: int, sess):
        cites = (CitationInput(1, f"Doc {i}", "quote"),)
        if i == 5:
            cites = (CitationInput(1, "A", "q"), CitationInput(1, "B", "q"))
        usage = (UsageInput(ws.id, "chat", user_id=user.id, prompt_tokens=i + 1),)
        return store.add_exchange(
            MessageInput(sess.id, "user", f"question {i}", user_id=user.id),
            MessageInput(sess.id, "assistant", f"answer {i} [1]", citations=cites, grounded=True),
            usage,
        )

    try:
        outcomes = await asyncio.gather(
            *(exchange(i, s) for i, s in enumerate(threads)), return_exceptions=True
        )
    finally:
        event.remove(database.engine.sync_engine, "commit", _on_commit)
    assert isinstance(outcomes[5], IntegrityError)
    good = [o for i, o in enumerate(outcomes) if i != 5]
    assert all(isinstance(o, tuple) for o in good) and len({a for _, a in good}) == 11
    for i, sess in enumerate(threads):
        history = await store.history(sess.id)
        expected = [] if i == 5 else [f"question {i}", f"answer {i} [1]"]
        assert [m.content for m in history] == expected
    assert await _count(database, Message, Message.content.like("%5%")) == 0
    assert await _count(database, TokenUsage, TokenUsage.prompt_tokens == 6) == 0
    assert await _count(database, TokenUsage, TokenUsage.workspace_id == ws.id) == 11
    _, answer_id = good[0]
    assert [c.title for c in await store.citations(answer_id)] == ["Doc 0"]
    # shared transactions: fewer commits than answers even with the failed one retried alone
    assert 0 < len(commits) < len(threads)


async def test_chunk_reads_that_arrive_together_each_get_their_own_chunks(database) -> None:
    """KnowledgeStore.chunks coalesces concurrent reads into shared statements; each caller
    still gets exactly its ids (overlapping or not), and only chunks of indexed documents."""
    _, ws, _, _, _ = await _thread(database)
    ns_id, indexed, failed = new_id(), new_id(), new_id()
    chunk_ids = [new_id() for _ in range(30)]
    async with database.session() as db, db.begin():
        await db.execute(
            insert(Namespace),
            [
                {
                    "id": ns_id,
                    "workspace_id": ws.id,
                    "name": "kb",
                    "config": {},
                    "created_at": utcnow(),
                }
            ],
        )
        await db.execute(
            insert(Document),
            [
                {
                    "id": doc,
                    "namespace_id": ns_id,
                    "title": f"doc {status}",
                    "file_hash": status,
                    "status": status,
                    "size_bytes": 1,
                    "chunk_count": 15,
                    "token_count": 1,
                    "created_at": utcnow(),
                }
                for doc, status in ((indexed, "indexed"), (failed, "failed"))
            ],
        )
        await db.execute(
            insert(Chunk),
            [
                {
                    "id": cid,
                    "document_id": indexed if i < 20 else failed,
                    "chunk_index": i,
                    "content": f"chunk {i}",
                    "content_hash": str(i),
                    "start_offset": i,
                    "end_offset": i + 1,
                }
                for i, cid in enumerate(chunk_ids)
            ],
        )
    knowledge = KnowledgeStore(database)
    asks = [chunk_ids[i : i + 8] for i in range(0, 30, 3)] + [[new_id()], chunk_ids[::-1]]
    results = await asyncio.gather(*(knowledge.chunks(ids) for ids in asks))
    for ids, found in zip(asks, results, strict=True):
        expected = (
            {cid for cid in ids if chunk_ids.index(cid) < 20} if ids[0] in chunk_ids else set()
        )
        assert set(found) == expected
        assert all(found[c].content == f"chunk {chunk_ids.index(c)}" for c in found)
        assert all(v.workspace_id == ws.id and v.title == "doc indexed" for v in found.values())


async def test_a_channel_has_at_most_one_upload_namespace_and_it_comes_first(database) -> None:
    _, ws, ch, _, _ = await _thread(database)
    knowledge = KnowledgeStore(database)
    archive = await knowledge.create_namespace(ws.id, "archive")
    team = await knowledge.create_namespace(ws.id, "team")
    wiki = await knowledge.create_namespace(ws.id, "wiki")
    await knowledge.bind(ch.id, archive.id)
    await knowledge.bind(ch.id, team.id)
    names = [n.name for n in await knowledge.channel_namespaces(ch.id)]
    assert names == ["archive", "team"]  # none chosen: by name
    await knowledge.set_upload_namespace(ch.id, team.id)
    assert [n.name for n in await knowledge.channel_namespaces(ch.id)] == ["team", "archive"]
    # choosing another moves the mark (binding it on the way); the old one stays searched
    generation = knowledge.generation
    await knowledge.set_upload_namespace(ch.id, wiki.id)
    assert knowledge.generation > generation  # resolvers' caches see the change
    assert [n.name for n in await knowledge.channel_namespaces(ch.id)] == [
        "wiki",
        "archive",
        "team",
    ]
    assert await _count(database, ChannelNamespace, ChannelNamespace.receives_uploads) == 1
    await knowledge.set_upload_namespace(ch.id, wiki.id)  # again: nothing changes
    assert await _count(database, ChannelNamespace, ChannelNamespace.receives_uploads) == 1
    # unbinding it leaves the channel without one: by name again
    await knowledge.unbind(ch.id, wiki.id)
    assert [n.name for n in await knowledge.channel_namespaces(ch.id)] == ["archive", "team"]
