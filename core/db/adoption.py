"""SQL of a workspace joining its organisation: its namespaces change owner, or merge into the
organisation's namespace of the same name, keeping every binding, document and usage row."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from core.db.access import Database
from core.db.models import (
    ChannelNamespace,
    DailyUsage,
    Document,
    Namespace,
    TokenUsage,
    TokenUsageArchive,
)
from core.db.namespaces import add_binding, namespace_record
from core.db.records import NamespaceRecord


class AdoptionStore:
    """Moves namespaces between owning workspaces in SQL (vectors are the caller's)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def owned(self, workspace_id: uuid.UUID) -> list[NamespaceRecord]:
        """Every namespace a workspace owns, conversations' included."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(Namespace).where(Namespace.workspace_id == workspace_id)
            )
            return [namespace_record(r) for r in rows]

    async def duplicates(self, source: uuid.UUID, target: uuid.UUID) -> list[uuid.UUID]:
        """Documents of ``source`` whose bytes ``target`` holds already."""
        theirs = aliased(Document)
        stmt = select(Document.id).where(
            Document.namespace_id == source,
            exists().where(theirs.namespace_id == target, theirs.file_hash == Document.file_hash),
        )
        async with self._db.read() as conn:
            return list((await conn.execute(stmt)).scalars())

    async def reassign(self, namespace_id: uuid.UUID, owner_id: uuid.UUID) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(Namespace).where(Namespace.id == namespace_id).values(workspace_id=owner_id)
            )

    async def merge(self, source: uuid.UUID, target: uuid.UUID) -> None:
        """Documents, bindings and usage of ``source`` become ``target``'s; ``source`` goes.
        (Documents of the same bytes must have been removed first: ``duplicates``.)"""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(Document).where(Document.namespace_id == source).values(namespace_id=target)
            )
            await _move_bindings(conn, source, target)
            for model in (TokenUsage, TokenUsageArchive):
                await conn.execute(
                    update(model).where(model.namespace_id == source).values(namespace_id=target)
                )
            await _move_daily(conn, source, target)
            await conn.execute(delete(Namespace).where(Namespace.id == source))


async def _move_bindings(conn: AsyncConnection, source: uuid.UUID, target: uuid.UUID) -> None:
    rows = await conn.execute(
        select(ChannelNamespace).where(ChannelNamespace.namespace_id == source)
    )
    for row in rows.all():
        await add_binding(
            conn,
            row.channel_id,
            target,
            receives_uploads=row.receives_uploads,
            created_at=row.created_at,
        )


async def _move_daily(conn: AsyncConnection, source: uuid.UUID, target: uuid.UUID) -> None:
    """Daily rows follow unless the target has a row with the same key (then they stay
    under the old id: their sums are not lost, only their namespace's name)."""
    other = aliased(DailyUsage)
    same_key = and_(
        other.namespace_id == target,
        other.day == DailyUsage.day,
        other.workspace_id == DailyUsage.workspace_id,
        other.user_id.is_not_distinct_from(DailyUsage.user_id),
        other.channel_id.is_not_distinct_from(DailyUsage.channel_id),
        other.model == DailyUsage.model,
    )
    await conn.execute(
        update(DailyUsage)
        .where(DailyUsage.namespace_id == source, ~exists().where(same_key))
        .values(namespace_id=target)
    )
