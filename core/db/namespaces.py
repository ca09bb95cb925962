"""Namespaces (separate knowledge collections) and which channels search them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.access import Database
from core.db.identity import channel_record as _channel
from core.db.models import Channel, ChannelNamespace, Document, Namespace
from core.db.records import ChannelRecord, NamespaceRecord
from core.db.statements import insert_ignore
from core.db.types import new_id, utcnow
from core.enums import DocumentStatus
from core.errors import NamespaceExists, NamespaceNotFound

DEFAULT_NAMESPACE = "general"


def namespace_record(row: Any) -> NamespaceRecord:
    """A namespace row (its columns, named as the model's attributes) as a plain record."""
    return NamespaceRecord(
        row.id,
        row.workspace_id,
        row.name,
        row.description,
        dict(row.config or {}),
        channel_id=row.channel_id,
        owner_id=row.owner_id,
    )


async def add_binding(
    conn: AsyncConnection,
    channel_id: uuid.UUID,
    namespace_id: uuid.UUID,
    *,
    receives_uploads: bool = False,
    created_at: datetime | None = None,
) -> None:
    """Bind the channel to the namespace in ``conn``'s transaction (nothing if it already is)."""
    values = {
        "channel_id": channel_id,
        "namespace_id": namespace_id,
        "receives_uploads": receives_uploads,
        "created_at": created_at or utcnow(),
    }
    stmt = insert_ignore(conn.dialect.name, ChannelNamespace, ("channel_id", "namespace_id"))
    await conn.execute(stmt, values)


class NamespaceStore:
    """Namespaces of a workspace and their channel bindings."""

    def __init__(self, db: Database) -> None:
        self._db = db
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
        return await self._one(
            select(Namespace).where(
                Namespace.workspace_id == workspace_id,
                Namespace.name == name,
                Namespace.channel_id.is_(None),
            )
        )

    async def namespace_by_id(self, namespace_id: uuid.UUID) -> NamespaceRecord | None:
        return await self._one(select(Namespace).where(Namespace.id == namespace_id))

    async def _one(self, stmt: Select[Any]) -> NamespaceRecord | None:
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return namespace_record(row) if row is not None else None

    async def _all(self, stmt: Select[Any]) -> list[NamespaceRecord]:
        async with self._db.read() as conn:
            return [namespace_record(r) for r in await conn.execute(stmt)]

    async def ensure_namespace(
        self, workspace_id: uuid.UUID, name: str, *, description: str | None = None
    ) -> NamespaceRecord:
        found = await self.find(workspace_id, name)
        if found is not None:
            return found
        # first use: create it (racing creators meet in the unique constraint)
        values = {
            "id": new_id(),
            "workspace_id": workspace_id,
            "name": name,
            "description": description,
            "config": {},
            "created_at": utcnow(),
        }
        stmt = insert_ignore(self._db.dialect, Namespace, ("workspace_id", "name"))
        async with self._db.transaction() as conn:
            await conn.execute(stmt, values)
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
            async with self._db.transaction() as conn:
                await conn.execute(
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
        async with self._db.transaction() as conn:
            await conn.execute(delete(Namespace).where(Namespace.id == namespace_id))
        self.generation += 1

    async def list_namespaces(self, workspace_id: uuid.UUID) -> list[tuple[NamespaceRecord, int]]:
        """Shared namespaces of a workspace (not conversations') with their count of indexed
        documents."""
        counts = (
            select(Document.namespace_id, func.count().label("n"))
            .where(Document.status == DocumentStatus.INDEXED)
            .group_by(Document.namespace_id)
            .subquery()
        )
        stmt = (
            select(Namespace, func.coalesce(counts.c.n, 0).label("documents"))
            .outerjoin(counts, counts.c.namespace_id == Namespace.id)
            .where(Namespace.workspace_id == workspace_id, Namespace.channel_id.is_(None))
            .order_by(Namespace.name)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [(namespace_record(r), int(r.documents)) for r in rows]

    async def update_namespace_config(
        self, namespace_id: uuid.UUID, config: dict[str, Any]
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(Namespace).where(Namespace.id == namespace_id).values(config=config)
            )
        self.generation += 1

    async def set_config_value(self, namespace_id: uuid.UUID, key: str, value: Any) -> None:
        """Set one key of the namespace's config (None removes it), keeping the others."""
        async with self._db.transaction() as conn:
            found = await conn.execute(select(Namespace.config).where(Namespace.id == namespace_id))
            config = dict(found.scalar_one_or_none() or {})
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
            await conn.execute(
                update(Namespace).where(Namespace.id == namespace_id).values(config=config)
            )
        self.generation += 1

    async def namespace_prompts(self, namespace_id: uuid.UUID) -> tuple[str, ...]:
        """The suggested prompts an admin set for the namespace (empty when none)."""
        found = await self.namespace_by_id(namespace_id)
        return found.prompts if found is not None else ()

    async def set_owner(self, namespace_id: uuid.UUID, user_id: uuid.UUID | None) -> None:
        """Name the user asked about the namespace's gaps (None: nobody)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(Namespace).where(Namespace.id == namespace_id).values(owner_id=user_id)
            )
        self.generation += 1

    async def owned_namespaces(
        self, user_id: uuid.UUID | None = None
    ) -> dict[uuid.UUID, list[NamespaceRecord]]:
        """Namespaces with an owner, by owner (only ``user_id``'s when given), by name."""
        stmt = select(Namespace).where(Namespace.owner_id.is_not(None))
        if user_id is not None:
            stmt = stmt.where(Namespace.owner_id == user_id)
        out: dict[uuid.UUID, list[NamespaceRecord]] = {}
        for ns in await self._all(stmt.order_by(Namespace.name)):
            assert ns.owner_id is not None
            out.setdefault(ns.owner_id, []).append(ns)
        return out

    # --- channel bindings ---------------------------------------------------------------

    async def bind(self, channel_id: uuid.UUID, namespace_id: uuid.UUID) -> None:
        async with self._db.transaction() as conn:
            await add_binding(conn, channel_id, namespace_id)
        self.generation += 1

    async def unbind(self, channel_id: uuid.UUID, namespace_id: uuid.UUID) -> bool:
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(ChannelNamespace).where(
                    ChannelNamespace.channel_id == channel_id,
                    ChannelNamespace.namespace_id == namespace_id,
                )
            )
        self.generation += 1
        return bool(result.rowcount)

    async def set_upload_namespace(self, channel_id: uuid.UUID, namespace_id: uuid.UUID) -> None:
        """Files dropped in the channel go to this namespace from now on; the channel is bound
        to it if it was not (a channel searches where its uploads go)."""
        async with self._db.transaction() as conn:
            await add_binding(conn, channel_id, namespace_id)
            await conn.execute(
                update(ChannelNamespace)
                .where(ChannelNamespace.channel_id == channel_id)
                .values(receives_uploads=ChannelNamespace.namespace_id == namespace_id)
            )
        self.generation += 1

    async def channel_namespaces(self, channel_id: uuid.UUID) -> list[NamespaceRecord]:
        """The namespaces a channel searches: the one its uploads go to first (the channel's
        own), then the rest by name; without an upload namespace, all by name."""
        return await self._all(
            select(Namespace)
            .join(ChannelNamespace, ChannelNamespace.namespace_id == Namespace.id)
            .where(ChannelNamespace.channel_id == channel_id)
            .order_by(ChannelNamespace.receives_uploads.desc(), Namespace.name)
        )

    async def upload_namespace(self, channel_id: uuid.UUID) -> NamespaceRecord | None:
        """The namespace an admin chose for the files dropped in the channel, if any."""
        return await self._one(
            select(Namespace)
            .join(ChannelNamespace, ChannelNamespace.namespace_id == Namespace.id)
            .where(
                ChannelNamespace.channel_id == channel_id,
                ChannelNamespace.receives_uploads.is_(True),
            )
        )

    async def namespace_channels(self, namespace_id: uuid.UUID) -> list[ChannelRecord]:
        """The channels bound to a namespace, with what is known of their privacy."""
        stmt = (
            select(Channel)
            .join(ChannelNamespace, ChannelNamespace.channel_id == Channel.id)
            .where(ChannelNamespace.namespace_id == namespace_id)
            .order_by(Channel.name, Channel.external_id)
        )
        async with self._db.read() as conn:
            return [_channel(r) for r in await conn.execute(stmt)]

    async def bindings(self, owner_id: uuid.UUID) -> list[tuple[uuid.UUID, ChannelRecord]]:
        """(namespace id, channel) of every binding of the namespaces ``owner_id`` owns (the
        channels may be in any of the workspaces that share them)."""
        stmt = (
            select(ChannelNamespace.namespace_id.label("bound_to"), Channel)
            .join(Channel, Channel.id == ChannelNamespace.channel_id)
            .join(Namespace, Namespace.id == ChannelNamespace.namespace_id)
            .where(Namespace.workspace_id == owner_id)
        )
        async with self._db.read() as conn:
            return [(r.bound_to, _channel(r)) for r in await conn.execute(stmt)]

    # --- conversations' own files -------------------------------------------------------

    async def conversation_namespace(self, channel_id: uuid.UUID) -> NamespaceRecord | None:
        """The namespace of the files dropped in one channel or DM (None until the first)."""
        return await self._one(select(Namespace).where(Namespace.channel_id == channel_id))

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
        stmt = insert_ignore(self._db.dialect, Namespace, ("channel_id",))
        async with self._db.transaction() as conn:
            await conn.execute(stmt, values)
        self.generation += 1
        created = await self.conversation_namespace(channel_id)
        assert created is not None
        return created
