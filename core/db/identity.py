"""Workspaces, users, channels, sessions and event claims.

Every get-or-create is safe under concurrency on both databases: the row is inserted with
``ON CONFLICT DO NOTHING`` on its natural key and then read back, so fifty concurrent calls for
one thread key give one row and no error.

A platform event is claimed with a lease (``claim_event``) and marked completed once handled
(``complete_event``). A delivery of an event that is completed, or whose lease still runs, is
a duplicate; one whose lease ran out uncompleted takes it over: the replica that claimed it
died before answering, and the platform's retry must not be ignored.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Executable, Insert

from core.db.access import Database
from core.db.models import Base, Channel, ProcessedEvent, Session, User, Workspace
from core.db.records import (
    ChannelRecord,
    SessionRecord,
    UserAddress,
    UserRecord,
    WorkspaceRecord,
)
from core.db.statements import insert_ignore, select_by
from core.db.types import new_id, utcnow
from core.enums import UserRole

# Longer than an answer takes (GROQ_TIMEOUT bounds its LLM work, retries included), shorter
# than Slack's last retry of an unacknowledged event (5 minutes).
EVENT_LEASE = timedelta(seconds=90)


@functools.cache
def _prepared_claim(dialect: str) -> Insert:
    """Insert a claim; over an uncompleted claim whose lease ran out, renew the lease instead
    (the row counts as changed either way, so the rowcount says whether this call claimed)."""
    module: Any = postgresql if dialect == "postgresql" else sqlite
    table = ProcessedEvent.__table__
    stmt = module.insert(table)
    expired = table.c.completed_at.is_(None) & (
        table.c.lease_expires_at < stmt.excluded.received_at
    )
    claim: Insert = stmt.on_conflict_do_update(
        index_elements=["platform", "event_id"],
        set_={"lease_expires_at": stmt.excluded.lease_expires_at},
        where=expired,
    )
    return claim


@functools.cache
def _prepared_completion() -> Update:
    return (
        update(ProcessedEvent)
        .where(ProcessedEvent.platform == bindparam("p"), ProcessedEvent.event_id == bindparam("e"))
        .values(completed_at=bindparam("done"))
    )


# The rows below are Core rows (``select_by``, ``RETURNING``), named as the models' attributes.
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


@dataclass(frozen=True, slots=True)
class _Write:
    """One statement of the identity writes' group commit."""

    stmt: Executable
    params: dict[str, Any]
    returning: bool = False  # the first row comes back, else the rowcount


async def _write_each(conn: AsyncConnection, writes: Sequence[_Write]) -> list[Any]:
    out: list[Any] = []
    for write in writes:
        result = await conn.execute(write.stmt, write.params)
        out.append(result.first() if write.returning else result.rowcount)
    return out


class IdentityStore:
    """Resolves platform ids to rows, creating them on first sight."""

    def __init__(self, db: Database, *, event_lease: timedelta = EVENT_LEASE) -> None:
        self._db = db
        self._event_lease = event_lease
        self._cache = _TtlCache()
        # a burst of new threads and events shares transactions
        self._writes = db.group_commit(_write_each)

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
        lookup = select_by(model, tuple(key))
        if not usually_new:
            async with self._db.read() as conn:
                row = (await conn.execute(lookup, key)).first()
                if row is not None:
                    return row
        values = {"id": new_id(), **key, **extra}
        if "created_at" in model.__table__.c:
            values.setdefault("created_at", utcnow())
        returning = usually_new and self._db.insert_returning
        stmt = insert_ignore(self._db.dialect, model, tuple(key), returning=returning)
        inserted = await self._writes.submit(_Write(stmt, values, returning=returning))
        if returning and inserted is not None:
            return inserted
        async with self._db.read() as conn:  # committed by now: theirs or ours
            return (await conn.execute(lookup, key)).one()

    async def workspace(
        self, platform: str, external_id: str, *, name: str | None = None
    ) -> WorkspaceRecord:
        key = {"platform": platform, "external_id": external_id}
        record = _workspace(await self._get_or_create(Workspace, key, {"name": name}))
        if name and record.name != name:  # renamed on the platform, or first named now
            await self._update(Workspace, record.id, name=name)
            record = replace(record, name=name)
        return record

    async def _update(self, model: Any, record_id: uuid.UUID, **values: Any) -> None:
        """Change columns of one row (a name the platform gave, a role) and forget its cached
        copies."""
        async with self._db.transaction() as conn:
            await conn.execute(update(model).where(model.id == record_id).values(**values))
        self._cache.drop(lambda _key, row: getattr(row, "id", None) == record_id)

    async def workspaces(self) -> list[WorkspaceRecord]:
        """Every workspace seen, by platform and id."""
        stmt = select(Workspace.__table__).order_by(Workspace.platform, Workspace.external_id)
        async with self._db.read() as conn:
            return [_workspace(r) for r in await conn.execute(stmt)]

    async def workspace_by_id(self, workspace_id: uuid.UUID) -> WorkspaceRecord | None:
        """A workspace row by id (cached like the others)."""
        cache_key = ("workspace_by_id", workspace_id)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cast(WorkspaceRecord, cached)
        async with self._db.read() as conn:
            row = (await conn.execute(select_by(Workspace, ("id",)), {"id": workspace_id})).first()
        if row is None:
            return None
        record = _workspace(row)
        self._cache.put(cache_key, record)
        return record

    async def user(
        self, workspace_id: uuid.UUID, external_id: str, *, display_name: str | None = None
    ) -> UserRecord:
        row = await self._get_or_create(
            User,
            {"workspace_id": workspace_id, "external_id": external_id},
            {"display_name": display_name, "role": UserRole.USER, "is_active": True},
        )
        record = _user(row)
        if display_name and record.display_name != display_name:
            await self._update(User, record.id, display_name=display_name)
            record = replace(record, display_name=display_name)
        return record

    async def address(self, user_id: uuid.UUID) -> UserAddress | None:
        """How to reach a stored user on their platform (None when the user is gone)."""
        stmt = (
            select(Workspace.platform, Workspace.external_id, User.external_id.label("user"))
            .join(User, User.workspace_id == Workspace.id)
            .where(User.id == user_id)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).first()
        return UserAddress(row.platform, row.external_id, row.user) if row is not None else None

    async def channel(
        self, workspace_id: uuid.UUID, external_id: str, *, name: str | None = None
    ) -> ChannelRecord:
        row = await self._get_or_create(
            Channel, {"workspace_id": workspace_id, "external_id": external_id}, {"name": name}
        )
        record = channel_record(row)
        if name and record.name != name:
            await self._update(Channel, record.id, name=name)
            record = replace(record, name=name)
        return record

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
        await self._update(
            Channel, channel_id, is_private=is_private, privacy_checked_at=checked_at
        )

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
        async with self._db.read() as conn:
            return (await conn.execute(stmt)).first() is not None

    async def set_role(self, user_id: uuid.UUID, role: UserRole) -> None:
        await self._update(User, user_id, role=role)

    async def claim_event(self, platform: str, event_id: str) -> bool:
        """Claim a platform event for handling: True when it is new, or when an earlier claim
        ran out of lease without completing (its claimant died); False for a delivery of an
        event being handled or handled already (a retry, a copy)."""
        now = utcnow()
        values = {
            "id": new_id(),
            "platform": platform,
            "event_id": event_id,
            "received_at": now,
            "lease_expires_at": now + self._event_lease,
        }
        claimed = await self._writes.submit(_Write(_prepared_claim(self._db.dialect), values))
        return bool(claimed == 1)

    async def complete_event(self, platform: str, event_id: str) -> None:
        """Mark a claimed event handled: no later delivery takes it over."""
        params = {"p": platform, "e": event_id, "done": utcnow()}
        await self._writes.submit(_Write(_prepared_completion(), params))
