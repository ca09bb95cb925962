"""Seeding helpers for the job tests: a workspace with channels, sessions and raw rows."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.identity import IdentityStore
from core.db.models import Message, ProcessedEvent, TokenUsage
from core.db.records import UsageInput
from core.db.types import new_id

NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)

# Deleting messages fires ON DELETE SET NULL on messages.parent_id and token_usage.message_id;
# without these indexes every deleted row scans both tables (20 s for 5,000 of 20,000 rows on
# SQLite). Migration 0001 lacks them; the names match what `index=True` on those columns would
# create, so once a migration adds them these statements do nothing.
FK_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ix_messages_parent_id ON messages (parent_id)",
    "CREATE INDEX IF NOT EXISTS ix_token_usage_message_id ON token_usage (message_id)",
)


async def ensure_fk_indexes(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for ddl in FK_INDEXES:
            await conn.execute(text(ddl))


@dataclass
class World:
    ids: IdentityStore
    workspace: uuid.UUID
    channel: uuid.UUID
    user: uuid.UUID


async def world(database, *, workspace: str = "T1") -> World:
    ids = IdentityStore(database)
    ws = await ids.workspace("slack", workspace, name="Acme")
    ch = await ids.channel(ws.id, "C1", name="general")
    user = await ids.user(ws.id, "U1", display_name="Ada")
    return World(ids, ws.id, ch.id, user.id)


def usage(w: World, when: datetime, **values) -> UsageInput:
    base = {
        "workspace_id": w.workspace,
        "operation": "chat",
        "model": "llama",
        "user_id": w.user,
        "channel_id": w.channel,
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "cost": Decimal("0.000125"),
        "created_at": when,
    }
    return UsageInput(**(base | values))


async def count(database, model, *where) -> int:
    async with database.session() as db:
        return (
            await db.execute(select(func.count()).select_from(model).where(*where))
        ).scalar_one()


async def add_events(database, when: list[datetime]) -> None:
    async with database.session() as db, db.begin():
        await db.execute(
            insert(ProcessedEvent),
            [
                {"id": new_id(), "platform": "slack", "event_id": f"E{i}", "received_at": t}
                for i, t in enumerate(when)
            ],
        )


async def raw_usage(database, *where) -> list[TokenUsage]:
    async with database.session() as db:
        return list((await db.execute(select(TokenUsage).where(*where))).scalars())


async def answers(database, w: World, n: int) -> list[uuid.UUID]:
    """``n`` assistant messages in one session of ``w``'s channel: what a usage row of an
    answered question points at."""
    session = await w.ids.session(w.workspace, w.channel, f"answers-{uuid.uuid4().hex}")
    ids = [new_id() for _ in range(n)]
    async with database.session() as db, db.begin():
        await db.execute(
            insert(Message),
            [{"id": i, "session_id": session.id, "role": "assistant", "content": "."} for i in ids],
        )
    return ids
