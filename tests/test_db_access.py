"""The database access layer on SQLite and PostgreSQL: group commit and coalesced reads."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.access import Database
from core.db.models import ProcessedEvent
from core.db.statements import insert_ignore
from core.db.types import new_id, utcnow


def _claims(database: Database):
    """A group commit of event claims: one insert-or-ignore per item, its rowcount back."""
    stmt = insert_ignore(database.dialect, ProcessedEvent, ("platform", "event_id"))

    async def write(conn: AsyncConnection, event_ids: Sequence[str | None]) -> list[int]:
        out = []
        for event_id in event_ids:
            values = {"id": new_id(), "platform": "grp", "event_id": event_id}
            result = await conn.execute(stmt, {**values, "received_at": utcnow()})
            out.append(result.rowcount)
        return out

    return database.group_commit(write)


async def _stored(database: Database) -> list[str]:
    async with database.read() as conn:
        rows = await conn.execute(
            select(ProcessedEvent.event_id)
            .where(ProcessedEvent.platform == "grp")
            .order_by(ProcessedEvent.event_id)
        )
        return [r.event_id for r in rows]


async def test_writes_that_arrive_together_share_a_transaction(database: Database) -> None:
    claims = _claims(database)
    commits: list[int] = []

    def on_commit(_conn: object) -> None:
        commits.append(1)

    event.listen(database.engine.sync_engine, "commit", on_commit)
    try:
        results = await asyncio.gather(*(claims.submit(f"e{i % 5}") for i in range(10)))
    finally:
        event.remove(database.engine.sync_engine, "commit", on_commit)
    assert results == [1] * 5 + [0] * 5  # each its own result, in arrival order
    assert 0 < len(commits) < 10  # the burst shared transactions
    assert await _stored(database) == [f"e{i}" for i in range(5)]


async def test_a_failing_write_falls_back_to_one_transaction_each_and_fails_alone(
    database: Database,
) -> None:
    """The item that breaks the shared transaction (NOT NULL here) fails, and only it: the
    others are written again alone and commit, also on PostgreSQL, where the first error
    aborts the whole shared transaction."""
    claims = _claims(database)
    first = asyncio.ensure_future(claims.submit("warm"))  # in flight: the rest share the next
    await asyncio.sleep(0)
    mixed = await asyncio.gather(
        claims.submit("f1"),
        claims.submit(None),
        claims.submit("f2"),
        claims.submit("f1"),
        return_exceptions=True,
    )
    assert await first == 1
    assert mixed[0] == 1 and mixed[2] == 1 and mixed[3] == 0
    assert isinstance(mixed[1], IntegrityError)
    assert await _stored(database) == ["f1", "f2", "warm"]
    assert await claims.submit("after") == 1  # the writer is still usable


async def test_a_lone_failing_write_raises_its_own_error(database: Database) -> None:
    claims = _claims(database)
    try:
        await claims.submit(None)
    except IntegrityError:
        pass
    else:
        raise AssertionError("a NOT NULL violation was committed")
    assert await _stored(database) == []


async def test_reads_that_arrive_together_share_one_read(database: Database) -> None:
    calls: list[tuple[str, list[int]]] = []

    async def read(conn: AsyncConnection, key: str, items: Sequence[int]) -> list[int]:
        calls.append((key, list(items)))
        total = (await conn.execute(select(func.count()).select_from(ProcessedEvent))).scalar()
        return [item + int(total or 0) for item in items]

    reads = database.coalesced(read, max_batch=8)
    first = asyncio.ensure_future(reads.fetch("a", 0))
    await asyncio.sleep(0)
    rest = await asyncio.gather(*(reads.fetch("a", i) for i in range(1, 4)), reads.fetch("b", 9))
    assert await first == 0 and rest == [1, 2, 3, 9]
    assert sorted(calls) == [("a", [0]), ("a", [1, 2, 3]), ("b", [9])]  # one read per key
