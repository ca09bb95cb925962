"""Workspaces, users, channels, sessions and event deduplication.

Every get-or-create is safe under concurrency on both databases: the row is inserted with
``ON CONFLICT DO NOTHING`` on its natural key and then read back, so fifty concurrent calls for
one thread key give one row and no error.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import OrderedDict
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Insert

from core.db.batch import StatementBatcher
from core.db.engine import bound_engine
from core.db.models import Base, Channel, ProcessedEvent, Session, User, Workspace
from core.db.records import ChannelRecord, SessionRecord, UserRecord, WorkspaceRecord
from core.db.types import new_id, utcnow


def insert_ignore(
    dialect: str, model: type[Base], values: dict[str, Any], keys: list[str]
) -> Insert:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING`` for SQLite or PostgreSQL."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt: Insert = module.insert(model).values(**values).on_conflict_do_nothing(index_elements=keys)
    return stmt


@functools.cache
def prepared_insert_ignore(
    dialect: str, model: type[Base], keys: tuple[str, ...], *, returning: bool = False
) -> Insert:
    """``insert_ignore`` without values, built once: execute it with the row as parameters.
    ``returning``: the inserted row comes back (none when the key existed).

    Building a statement costs more CPU than sending it (a third of a millisecond per
    statement on SQLite), and the hot paths of a question run on the event loop.
    """
    module: Any = postgresql if dialect == "postgresql" else sqlite
    # on the Core table: an ORM entity here would take the ORM's bulk path, which reports no
    # rowcount (record_event needs it to tell a retry)
    table = model.__table__
    stmt: Insert = module.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return stmt.returning(*table.c) if returning else stmt


@functools.cache
def _select_by(model: type[Base], keys: tuple[str, ...]) -> Select[Any]:
    """``SELECT model's columns WHERE key = :key AND ...``, built once per model and key set;
    Core rows (attributes named as the model's), not ORM objects."""
    table = model.__table__
    return select(table).where(*(table.c[k] == bindparam(k) for k in keys))


# The rows below are Core rows (``_select_by``, ``RETURNING``), named as the models' attributes.
def _workspace(row: Any) -> WorkspaceRecord:
    return WorkspaceRecord(row.id, row.platform, row.external_id, row.name, row.plan_id)


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.id,
        row.workspace_id,
        row.external_id,
        row.display_name,
        row.role,
        row.is_active,
        row.daily_token_limit,
    )


def channel_record(row: Any) -> ChannelRecord:
    """A channel row (ORM or Core) as a plain record."""
    return ChannelRecord(
        row.id,
        row.workspace_id,
        row.external_id,
        row.name,
        row.is_private,
        row.privacy_checked_at,
    )


def _session(row: Any) -> SessionRecord:
    return SessionRecord(
        row.id,
        row.workspace_id,
        row.channel_id,
        row.thread_key,
        row.title,
        row.created_at,
        row.last_activity_at,
    )


class _TtlCache:
    """A small LRU of resolved ids: a thread's next question skips the lookups.

    Entries expire so that rows deleted meanwhile (retention, an admin) are looked up again.
    """

    def __init__(self, *, size: int = 20_000, ttl_seconds: float = 600.0) -> None:
        self._items: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()
        self._size = size
        self._ttl = ttl_seconds

    def get(self, key: tuple[Any, ...]) -> Any:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def drop(self, predicate: Any) -> None:
        """Forget the entries for which ``predicate(key, value)`` is true."""
        for key in [k for k, (_, v) in self._items.items() if predicate(k, v)]:
            del self._items[key]


class IdentityStore:
    """Resolves platform ids to rows, creating them on first sight."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine = bound_engine(sessions)
        self._cache = _TtlCache()
        # a burst of new threads and events shares transactions (group commit)
        self._writes = StatementBatcher(self._engine)

    async def _get_or_create(
        self,
        model: type[Base],
        key: dict[str, Any],
        extra: dict[str, Any],
        *,
        usually_new: bool = False,
    ) -> Any:
        cache_key = (model.__tablename__, *key.values())
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        row = await self._lookup_or_insert(model, key, extra, usually_new=usually_new)
        self._cache.put(cache_key, row)
        return row

    async def _lookup_or_insert(
        self,
        model: type[Base],
        key: dict[str, Any],
        extra: dict[str, Any],
        *,
        usually_new: bool = False,
    ) -> Any:
        """The row with this key, inserted if missing. ``usually_new`` (a session: a thread's
        later questions find it in the cache) tries the insert first, so a new row costs one
        ``INSERT ... RETURNING`` instead of a lookup, an insert and a lookup."""
        lookup = _select_by(model, tuple(key))
        if not usually_new:
            async with self._engine.connect() as conn:
                row = (await conn.execute(lookup, key)).first()
                if row is not None:
                    return row
        values = {"id": new_id(), **key, **extra}
        if "created_at" in model.__table__.c:
            values.setdefault("created_at", utcnow())
        dialect = self._engine.dialect
        if usually_new and dialect.insert_returning:
            stmt = prepared_insert_ignore(dialect.name, model, tuple(key), returning=True)
            inserted = await self._writes.first(stmt, values)
            if inserted is not None:
                return inserted
        else:
            await self._writes.rowcount(
                prepared_insert_ignore(dialect.name, model, tuple(key)), values
            )
        async with self._engine.connect() as conn:  # committed by now: theirs or ours
            return (await conn.execute(lookup, key)).one()

    async def workspace(
        self, platform: str, external_id: str, *, name: str | None = None
    ) -> WorkspaceRecord:
        row = await self._get_or_create(
            Workspace, {"platform": platform, "external_id": external_id}, {"name": name}
        )
        return _workspace(row)

    async def user(
        self, workspace_id: uuid.UUID, external_id: str, *, display_name: str | None = None
    ) -> UserRecord:
        row = await self._get_or_create(
            User,
            {"workspace_id": workspace_id, "external_id": external_id},
            {"display_name": display_name, "role": "user", "is_active": True},
        )
        return _user(row)

    async def channel(
        self, workspace_id: uuid.UUID, external_id: str, *, name: str | None = None
    ) -> ChannelRecord:
        row = await self._get_or_create(
            Channel, {"workspace_id": workspace_id, "external_id": external_id}, {"name": name}
        )
        return channel_record(row)

    async def session(
        self,
        workspace_id: uuid.UUID,
        channel_id: uuid.UUID,
        thread_key: str,
        *,
        title: str | None = None,
    ) -> SessionRecord:
        now = utcnow()
        row = await self._get_or_create(
            Session,
            {"channel_id": channel_id, "thread_key": thread_key},
            {
                "workspace_id": workspace_id,
                "title": (title or "")[:255] or None,
                "created_at": now,
                "last_activity_at": now,
                "is_active": True,
            },
            usually_new=True,
        )
        record = _session(row)
        # created by this very call: it has no history and no files yet
        return replace(record, is_new=row.created_at == now)

    async def set_privacy(
        self, channel_id: uuid.UUID, is_private: bool | None, *, checked_at: datetime
    ) -> None:
        """Record what the platform says of a channel's privacy (None: it could not tell)."""
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(Channel)
                .where(Channel.id == channel_id)
                .values(is_private=is_private, privacy_checked_at=checked_at)
            )
        self._cache.drop(lambda key, row: key[0] == Channel.__tablename__ and row.id == channel_id)

    async def has_session(
        self, platform: str, workspace: str, channel: str, thread_key: str
    ) -> bool:
        """Whether a session exists for this platform thread (nothing is created)."""
        stmt = (
            select(Session.id)
            .join(Channel, Channel.id == Session.channel_id)
            .join(Workspace, Workspace.id == Session.workspace_id)
            .where(
                Workspace.platform == platform,
                Workspace.external_id == workspace,
                Channel.external_id == channel,
                Session.thread_key == thread_key,
            )
            .limit(1)
        )
        async with self._sessions() as db:
            return (await db.execute(stmt)).first() is not None

    async def set_role(self, user_id: uuid.UUID, role: str) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(update(User).where(User.id == user_id).values(role=role))
        self._cache.drop(lambda key, row: key[0] == User.__tablename__ and row.id == user_id)

    async def touch_user(self, user_id: uuid.UUID, *, when: datetime | None = None) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(User).where(User.id == user_id).values(last_seen_at=when or utcnow())
            )

    async def record_event(self, platform: str, event_id: str) -> bool:
        """Remember a platform event id; False when it was seen before (a retry)."""
        values = {
            "id": new_id(),
            "platform": platform,
            "event_id": event_id,
            "received_at": utcnow(),
        }
        stmt = prepared_insert_ignore(
            self._engine.dialect.name, ProcessedEvent, ("platform", "event_id")
        )
        return await self._writes.rowcount(stmt, values) == 1
