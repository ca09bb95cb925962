"""Token usage rows, daily counts for quotas, and plans."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.access import Database
from core.db.models import Plan, TokenUsage, User, Workspace, table
from core.db.records import UsageInput
from core.db.types import new_id, new_ids, utcnow
from core.enums import UsageOperation


@dataclass(frozen=True, slots=True)
class Limits:
    """Daily token limits; None means unlimited. Questions and uploads have separate ones."""

    user_daily_tokens: int | None
    workspace_daily_tokens: int | None
    user_daily_upload_tokens: int | None = None
    workspace_daily_upload_tokens: int | None = None


def _usage_values(item: UsageInput, usage_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": usage_id,
        "workspace_id": item.workspace_id,
        "user_id": item.user_id,
        "channel_id": item.channel_id,
        "namespace_id": item.namespace_id,
        "message_id": item.message_id,
        "operation": item.operation,
        "model": item.model,
        "prompt_tokens": item.prompt_tokens,
        "completion_tokens": item.completion_tokens,
        "embedding_tokens": item.embedding_tokens,
        "cost": item.cost,
        "latency_ms": item.latency_ms,
        "created_at": item.created_at or utcnow(),
    }


def usage_rows(items: Sequence[UsageInput]) -> list[dict[str, Any]]:
    """Insert values for token_usage rows (ids made in one batch)."""
    return [_usage_values(i, uid) for i, uid in zip(items, new_ids(len(items)), strict=True)]


# built once (the quota check runs before every answer): the user's tokens and the
# workspace's since a moment; a NULL user_id matches no row, so its sum is 0
_USAGE = table("token_usage")
_USAGE_TOKENS = _USAGE.c.prompt_tokens + _USAGE.c.completion_tokens + _USAGE.c.embedding_tokens
_TOTAL = func.coalesce(func.sum(_USAGE_TOKENS), 0)


def is_request() -> Any:
    """A token_usage row that stands for one answered question, extractive or LLM: its query
    embedding, recorded with the answer's message."""
    return and_(
        TokenUsage.operation == UsageOperation.EMBEDDING, TokenUsage.message_id.is_not(None)
    )


# Today's tokens of a workspace, split by the asking users (one row each) and everyone else
# (the NULL row): one statement answers every quota check of a burst in that workspace.
_QUOTA_USER = case(
    (_USAGE.c.user_id.in_(bindparam("users", expanding=True)), _USAGE.c.user_id)
).label("quota_user")
_QUOTA_STATE = (
    select(_QUOTA_USER, _TOTAL)
    .where(
        _USAGE.c.workspace_id == bindparam("workspace_id"),
        _USAGE.c.created_at >= bindparam("since"),
        _USAGE.c.operation != UsageOperation.INGEST,
    )
    .group_by(literal_column("quota_user"))  # by name: PostgreSQL would not match two binds
)
QUOTA_BATCH = 256  # quota checks of one workspace that share one statement at most
_INSERT_USAGE = insert(_USAGE)
_QuotaKey = tuple[uuid.UUID, datetime]  # workspace, since


async def _read_quota(
    conn: AsyncConnection, key: _QuotaKey, users: Sequence[uuid.UUID | None]
) -> list[tuple[int, int]]:
    """(user's tokens, workspace's tokens) for each of ``users``, in one statement."""
    workspace_id, since = key
    params = {
        "workspace_id": workspace_id,
        "since": since,
        "users": sorted({u for u in users if u is not None}),
    }
    rows = (await conn.execute(_QUOTA_STATE, params)).all()
    per_user = {user: int(tokens) for user, tokens in rows if user is not None}
    total = sum(int(tokens) for _, tokens in rows)
    return [(per_user.get(u, 0) if u is not None else 0, total) for u in users]


class UsageStore:
    """Records what every call costs and answers 'how much today?' from SQL."""

    def __init__(self, db: Database, *, limits_ttl: float = 30.0) -> None:
        self._db = db
        # Plans change rarely: other processes see an admin's change within limits_ttl.
        self._limits_ttl = limits_ttl
        self._limits_cache: dict[tuple[uuid.UUID, uuid.UUID | None], tuple[float, Limits]] = {}
        # the checks of a burst in one workspace share a statement
        self._quota_reads = db.coalesced(_read_quota, max_batch=QUOTA_BATCH)

    async def record(self, item: UsageInput) -> None:
        await self.record_many([item])

    async def record_many(self, items: Sequence[UsageInput]) -> None:
        if not items:
            return
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_USAGE, usage_rows(items))

    async def tokens_since(
        self,
        *,
        workspace_id: uuid.UUID,
        since: datetime,
        user_id: uuid.UUID | None = None,
        uploads: bool = False,
    ) -> int:
        """Tokens used (prompt + completion + embedding) since ``since``: by questions, or
        with ``uploads`` by indexing uploaded files."""
        ingest = _USAGE.c.operation == UsageOperation.INGEST
        kind = ingest if uploads else ~ingest
        stmt = select(_TOTAL).where(
            _USAGE.c.workspace_id == workspace_id, _USAGE.c.created_at >= since, kind
        )
        if user_id is not None:
            stmt = stmt.where(_USAGE.c.user_id == user_id)
        async with self._db.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def quota_state(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID | None, *, since: datetime
    ) -> tuple[Limits, int, int]:
        """Limits, the user's tokens and the workspace's tokens since ``since``: one statement
        (the limits come from their cache but every ``limits_ttl``); the checks that arrive
        while one runs share the next (``core.db.access``, coalesced reads)."""
        limits = self._cached_limits(workspace_id, user_id)
        if limits is None:
            limits = await self.limits(workspace_id, user_id)
        user_used, ws_used = await self._quota_reads.fetch((workspace_id, since), user_id)
        return limits, user_used, ws_used

    async def limits(self, workspace_id: uuid.UUID, user_id: uuid.UUID | None) -> Limits:
        """The plan of the workspace (or the default plan), with a user's own override."""
        cached = self._cached_limits(workspace_id, user_id)
        if cached is not None:
            return cached
        async with self._db.read() as conn:
            limits = await _load_limits(conn, workspace_id, user_id)
        if len(self._limits_cache) > 10_000:
            self._limits_cache.clear()
        self._limits_cache[(workspace_id, user_id)] = (time.monotonic() + self._limits_ttl, limits)
        return limits

    def _cached_limits(self, workspace_id: uuid.UUID, user_id: uuid.UUID | None) -> Limits | None:
        cached = self._limits_cache.get((workspace_id, user_id))
        return cached[1] if cached is not None and cached[0] > time.monotonic() else None

    async def set_workspace_limits(self, workspace_id: uuid.UUID, **changes: int) -> Limits:
        """Give the workspace its own plan (copied from its current one) and change some of its
        limits (``Limits`` field names)."""
        unknown = set(changes) - set(Limits.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        self._limits_cache.clear()
        current = await self.limits(workspace_id, None)
        new = replace(current, **changes)
        values = {name: getattr(new, name) for name in Limits.__dataclass_fields__}
        own_plan = (
            select(Plan.id)
            .select_from(Workspace)
            .outerjoin(Plan, (Plan.id == Workspace.plan_id) & Plan.is_default.is_(False))
            .where(Workspace.id == workspace_id)
        )
        async with self._db.transaction() as conn:
            plan_id = (await conn.execute(own_plan)).scalar_one()  # no such workspace: raises
            if plan_id is None:
                plan_id = new_id()
                plan = {"id": plan_id, "name": f"workspace-{workspace_id}", "is_default": False}
                await conn.execute(insert(Plan), [{**plan, **values}])
                await conn.execute(
                    update(Workspace).where(Workspace.id == workspace_id).values(plan_id=plan_id)
                )
            else:
                await conn.execute(update(Plan).where(Plan.id == plan_id).values(**values))
        self._limits_cache.clear()
        return new

    async def set_user_limit(self, user_id: uuid.UUID, limit: int | None) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                update(User).where(User.id == user_id).values(daily_token_limit=limit)
            )
        self._limits_cache.clear()


async def _load_limits(
    conn: AsyncConnection, workspace_id: uuid.UUID, user_id: uuid.UUID | None
) -> Limits:
    plan = (
        await conn.execute(
            select(Plan)
            .join(Workspace, Workspace.plan_id == Plan.id)
            .where(Workspace.id == workspace_id)
        )
    ).one_or_none()
    if plan is None:
        plan = (
            await conn.execute(select(Plan).where(Plan.is_default.is_(True)).limit(1))
        ).one_or_none()
    override = None
    if user_id is not None:
        override = (
            await conn.execute(select(User.daily_token_limit).where(User.id == user_id))
        ).scalar_one_or_none()
    user_limit = plan.user_daily_tokens if plan else None
    return Limits(
        user_daily_tokens=override if override is not None else user_limit,
        workspace_daily_tokens=plan.workspace_daily_tokens if plan else None,
        user_daily_upload_tokens=plan.user_daily_upload_tokens if plan else None,
        workspace_daily_upload_tokens=plan.workspace_daily_upload_tokens if plan else None,
    )
