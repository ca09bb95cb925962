"""Namespaces (separate knowledge collections) and which channels search them."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.engine import bound_engine
from core.db.identity import channel_record as _channel
from core.db.identity import insert_ignore
from core.db.models import Channel, ChannelNamespace, Document, Namespace
from core.db.records import ChannelRecord, NamespaceRecord
from core.db.types import new_id, utcnow
from core.errors import NamespaceExists, NamespaceNotFound

DEFAULT_NAMESPACE = "general"


def namespace_record(row: Namespace) -> NamespaceRecord:
    """A namespace row as a plain record."""
    return NamespaceRecord(
        row.id,
        row.workspace_id,
        row.name,
        row.description,
        dict(row.config or {}),
        channel_id=row.channel_id,
    )


async def _add_binding(db: AsyncSession, channel_id: uuid.UUID, namespace_id: uuid.UUID) -> None:
    """Bind the channel to the namespace in ``db``'s transaction (nothing if it already is)."""
    values = {"channel_id": channel_id, "namespace_id": namespace_id, "created_at": utcnow()}
    dialect = db.get_bind().dialect.name
    await db.execute(
        insert_ignore(dialect, ChannelNamespace, values, ["channel_id", "namespace_id"])
    )


class NamespaceStore:
    """Namespaces of a workspace and their channel bindings."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine = bound_engine(sessions)
        # Bumped by every change to namespaces or bindings in this process, so that caches of
        # "which namespaces does this channel search" can tell when they went stale.
        self.generation = 0

    # --- namespaces ---------------------------------------------------------------------

    async def namespace(self, workspace_id: uuid.UUID, name: str) -> NamespaceRecord:
        """A shared namespace by name; ``general`` always exists (it is made on first use)."""
        found = await self.find(workspace_id, name)
        if found is not None:
            return found
        if name == DEFAULT_NAMESPACE:
            return await self.ensure_namespace(workspace_id, name)
        raise NamespaceNotFound(name)

    async def find(self, workspace_id: uuid.UUID, name: str) -> NamespaceRecord | None:
        """A shared namespace by name, or None."""
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(Namespace).where(
                        Namespace.workspace_id == workspace_id,
                        Namespace.name == name,
                        Namespace.channel_id.is_(None),
                    )
                )
            ).scalar_one_or_none()
        return namespace_record(row) if row is not None else None

    async def namespace_by_id(self, namespace_id: uuid.UUID) -> NamespaceRecord | None:
        async with self._sessions() as db:
            row = await db.get(Namespace, namespace_id)
            return namespace_record(row) if row is not None else None

    async def ensure_namespace(
        self, workspace_id: uuid.UUID, name: str, *, description: str | None = None
    ) -> NamespaceRecord:
        found = await self.find(workspace_id, name)
        if found is not None:
            return found
        # first use: create it (racing creators meet in the unique constraint)
        async with self._sessions() as db, db.begin():
            values = {
                "id": new_id(),
                "workspace_id": workspace_id,
                "name": name,
                "description": description,
                "config": {},
                "created_at": utcnow(),
            }
            dialect = db.get_bind().dialect.name
            await db.execute(insert_ignore(dialect, Namespace, values, ["workspace_id", "name"]))
        created = await self.find(workspace_id, name)
        assert created is not None
        return created

    async def create_namespace(
        self,
        workspace_id: uuid.UUID,
        name: str,
        *,
        description: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> NamespaceRecord:
        try:
            async with self._sessions() as db, db.begin():
                await db.execute(
                    insert(Namespace),
                    [
                        {
                            "id": new_id(),
                            "workspace_id": workspace_id,
                            "name": name,
                            "description": description,
                            "config": config or {},
                            "created_at": utcnow(),
                        }
                    ],
                )
        except IntegrityError:
            raise NamespaceExists(name) from None
        self.generation += 1
        return await self.namespace(workspace_id, name)

    async def delete_namespace(self, namespace_id: uuid.UUID) -> None:
        """Deletes the namespace with its documents, chunks and channel links (cascades)."""
        async with self._sessions() as db, db.begin():
            await db.execute(delete(Namespace).where(Namespace.id == namespace_id))
        self.generation += 1

    async def list_namespaces(self, workspace_id: uuid.UUID) -> list[tuple[NamespaceRecord, int]]:
        """Shared namespaces of a workspace (not conversations') with their count of indexed
        documents."""
        counts = (
            select(Document.namespace_id, func.count().label("n"))
            .where(Document.status == "indexed")
            .group_by(Document.namespace_id)
            .subquery()
        )
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(Namespace, func.coalesce(counts.c.n, 0))
                    .outerjoin(counts, counts.c.namespace_id == Namespace.id)
                    .where(Namespace.workspace_id == workspace_id, Namespace.channel_id.is_(None))
                    .order_by(Namespace.name)
                )
            ).all()
        return [(namespace_record(ns), int(n)) for ns, n in rows]

    async def update_namespace_config(
        self, namespace_id: uuid.UUID, config: dict[str, Any]
    ) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(Namespace).where(Namespace.id == namespace_id).values(config=config)
            )
        self.generation += 1

    # --- channel bindings ---------------------------------------------------------------

    async def bind(self, channel_id: uuid.UUID, namespace_id: uuid.UUID) -> None:
        async with self._sessions() as db, db.begin():
            await _add_binding(db, channel_id, namespace_id)
        self.generation += 1

    async def unbind(self, channel_id: uuid.UUID, namespace_id: uuid.UUID) -> bool:
        async with self._sessions() as db, db.begin():
            result = await db.execute(
                delete(ChannelNamespace).where(
                    ChannelNamespace.channel_id == channel_id,
                    ChannelNamespace.namespace_id == namespace_id,
                )
            )
        self.generation += 1
        return bool(getattr(result, "rowcount", 0))

    async def set_upload_namespace(self, channel_id: uuid.UUID, namespace_id: uuid.UUID) -> None:
        """Files dropped in the channel go to this namespace from now on; the channel is bound
        to it if it was not (a channel searches where its uploads go)."""
        async with self._sessions() as db, db.begin():
            await _add_binding(db, channel_id, namespace_id)
            await db.execute(
                update(ChannelNamespace)
                .where(ChannelNamespace.channel_id == channel_id)
                .values(receives_uploads=ChannelNamespace.namespace_id == namespace_id)
            )
        self.generation += 1

    async def channel_namespaces(self, channel_id: uuid.UUID) -> list[NamespaceRecord]:
        """The namespaces a channel searches: the one its uploads go to first (the channel's
        own), then the rest by name; without an upload namespace, all by name."""
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(Namespace)
                    .join(ChannelNamespace, ChannelNamespace.namespace_id == Namespace.id)
                    .where(ChannelNamespace.channel_id == channel_id)
                    .order_by(ChannelNamespace.receives_uploads.desc(), Namespace.name)
                )
            ).scalars()
            return [namespace_record(r) for r in rows]

    async def upload_namespace(self, channel_id: uuid.UUID) -> NamespaceRecord | None:
        """The namespace an admin chose for the files dropped in the channel, if any."""
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(Namespace)
                    .join(ChannelNamespace, ChannelNamespace.namespace_id == Namespace.id)
                    .where(
                        ChannelNamespace.channel_id == channel_id,
                        ChannelNamespace.receives_uploads.is_(True),
                    )
                )
            ).scalar_one_or_none()
            return namespace_record(row) if row is not None else None

    async def namespace_channels(self, namespace_id: uuid.UUID) -> list[ChannelRecord]:
        """The channels bound to a namespace, with what is known of their privacy."""
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(Channel)
                    .join(ChannelNamespace, ChannelNamespace.channel_id == Channel.id)
                    .where(ChannelNamespace.namespace_id == namespace_id)
                    .order_by(Channel.name, Channel.external_id)
                )
            ).scalars()
            return [_channel(r) for r in rows]

    async def bindings(self, owner_id: uuid.UUID) -> list[tuple[uuid.UUID, ChannelRecord]]:
        """(namespace id, channel) of every binding of the namespaces ``owner_id`` owns (the
        channels may be in any of the workspaces that share them)."""
        async with self._sessions() as db:
            rows = await db.execute(
                select(ChannelNamespace.namespace_id, Channel)
                .join(Channel, Channel.id == ChannelNamespace.channel_id)
                .join(Namespace, Namespace.id == ChannelNamespace.namespace_id)
                .where(Namespace.workspace_id == owner_id)
            )
            return [(ns_id, _channel(ch)) for ns_id, ch in rows]

    # --- conversations' own files -------------------------------------------------------

    async def conversation_namespace(self, channel_id: uuid.UUID) -> NamespaceRecord | None:
        """The namespace of the files dropped in one channel or DM (None until the first)."""
        async with self._sessions() as db:
            row = (
                await db.execute(select(Namespace).where(Namespace.channel_id == channel_id))
            ).scalar_one_or_none()
            return namespace_record(row) if row is not None else None

    async def ensure_conversation_namespace(
        self, workspace_id: uuid.UUID, channel_id: uuid.UUID
    ) -> NamespaceRecord:
        found = await self.conversation_namespace(channel_id)
        if found is not None:
            return found
        values = {
            "id": new_id(),
            "workspace_id": workspace_id,
            # "~" is outside the names admins can give, so it never collides with theirs
            "name": f"~{channel_id.hex}",
            "description": None,
            "config": {},
            "channel_id": channel_id,
            "created_at": utcnow(),
        }
        async with self._sessions() as db, db.begin():
            dialect = db.get_bind().dialect.name
            await db.execute(insert_ignore(dialect, Namespace, values, ["channel_id"]))
        self.generation += 1
        created = await self.conversation_namespace(channel_id)
        assert created is not None
        return created
