"""SQL of a workspace joining its organisation: its namespaces change owner, or merge into the
organisation's namespace of the same name, keeping every binding, document and usage row."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from core.db.identity import insert_ignore
from core.db.models import (
    ChannelNamespace,
    DailyUsage,
    Document,
    Namespace,
    TokenUsage,
    TokenUsageArchive,
)
from core.db.namespaces import namespace_record
from core.db.records import NamespaceRecord


class AdoptionStore:
    """Moves namespaces between owning workspaces in SQL (vectors are the caller's)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def owned(self, workspace_id: uuid.UUID) -> list[NamespaceRecord]:
        """Every namespace a workspace owns, conversations' included."""
        async with self._sessions() as db:
            rows = await db.execute(select(Namespace).where(Namespace.workspace_id == workspace_id))
            return [namespace_record(r) for r in rows.scalars()]

    async def duplicates(self, source: uuid.UUID, target: uuid.UUID) -> list[uuid.UUID]:
        """Documents of ``source`` whose bytes ``target`` holds already."""
        theirs = aliased(Document)
        stmt = select(Document.id).where(
            Document.namespace_id == source,
            exists().where(theirs.namespace_id == target, theirs.file_hash == Document.file_hash),
        )
        async with self._sessions() as db:
            return list((await db.execute(stmt)).scalars())

    async def reassign(self, namespace_id: uuid.UUID, owner_id: uuid.UUID) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(Namespace).where(Namespace.id == namespace_id).values(workspace_id=owner_id)
            )

    async def merge(self, source: uuid.UUID, target: uuid.UUID) -> None:
        """Documents, bindings and usage of ``source`` become ``target``'s; ``source`` goes.
        (Documents of the same bytes must have been removed first: ``duplicates``.)"""
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(Document).where(Document.namespace_id == source).values(namespace_id=target)
            )
            await self._move_bindings(db, source, target)
            for model in (TokenUsage, TokenUsageArchive):
                await db.execute(
                    update(model).where(model.namespace_id == source).values(namespace_id=target)
                )
            await self._move_daily(db, source, target)
            await db.execute(delete(Namespace).where(Namespace.id == source))

    async def _move_bindings(self, db: AsyncSession, source: uuid.UUID, target: uuid.UUID) -> None:
        rows = (
            await db.execute(
                select(ChannelNamespace).where(ChannelNamespace.namespace_id == source)
            )
        ).scalars()
        dialect = db.get_bind().dialect.name
        for row in list(rows):
            values = {
                "channel_id": row.channel_id,
                "namespace_id": target,
                "receives_uploads": row.receives_uploads,
                "created_at": row.created_at,
            }
            await db.execute(
                insert_ignore(dialect, ChannelNamespace, values, ["channel_id", "namespace_id"])
            )

    async def _move_daily(self, db: AsyncSession, source: uuid.UUID, target: uuid.UUID) -> None:
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
        await db.execute(
            update(DailyUsage)
            .where(DailyUsage.namespace_id == source, ~exists().where(same_key))
            .values(namespace_id=target)
        )
