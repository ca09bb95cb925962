"""Channels that answer themselves: the per-channel switch and the decisions taken there (the
questions left alone there reach gap reports through ``core.db.gaps``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    func,
    insert,
    select,
)

from core.db.access import Database
from core.db.models import AutoAnswerDecision, Channel, ChannelAutoanswer, Workspace
from core.db.statements import upsert
from core.db.types import new_id, utcnow


class AutoAnswerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_enabled(self, channel_id: uuid.UUID, enabled: bool) -> None:
        """Turn a channel's autoanswer on or off."""
        stmt = upsert(
            self._db.dialect, ChannelAutoanswer, ("channel_id",), update=("enabled", "updated_at")
        )
        async with self._db.transaction() as conn:
            await conn.execute(
                stmt, {"channel_id": channel_id, "enabled": enabled, "updated_at": utcnow()}
            )

    async def enabled(self, channel_id: uuid.UUID) -> bool:
        stmt = select(ChannelAutoanswer.enabled).where(ChannelAutoanswer.channel_id == channel_id)
        async with self._db.read() as conn:
            return bool((await conn.execute(stmt)).scalar_one_or_none())

    async def channel_on(self, platform: str, workspace: str, channel: str) -> uuid.UUID | None:
        """The channel row's id when autoanswer is on in this platform channel, else None
        (read fresh, without creating rows: most channels never turn it on)."""
        stmt = (
            select(Channel.id)
            .join(ChannelAutoanswer, ChannelAutoanswer.channel_id == Channel.id)
            .join(Workspace, Workspace.id == Channel.workspace_id)
            .where(
                Workspace.platform == platform,
                Workspace.external_id == workspace,
                Channel.external_id == channel,
                ChannelAutoanswer.enabled.is_(True),
            )
            .limit(1)
        )
        async with self._db.read() as conn:
            found: uuid.UUID | None = (await conn.execute(stmt)).scalar_one_or_none()
            return found

    async def answered_since(self, channel_id: uuid.UUID, since: datetime) -> int:
        """How many questions were answered unasked in the channel since ``since``."""
        row = AutoAnswerDecision
        stmt = select(func.count()).where(
            row.channel_id == channel_id, row.answered.is_(True), row.created_at >= since
        )
        async with self._db.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def record(
        self,
        channel_id: uuid.UUID,
        *,
        answered: bool,
        probability: float | None,
        reason: str,
        at: datetime,
        question: str | None = None,
        thread_key: str | None = None,
    ) -> None:
        """Store one decision; ``question`` and ``thread_key`` only for a question left alone
        because the sources did not answer it (a gap)."""
        values = {
            "id": new_id(),
            "channel_id": channel_id,
            "answered": answered,
            "probability": probability,
            "reason": reason,
            "question": question,
            "thread_key": thread_key,
            "created_at": at,
        }
        async with self._db.transaction() as conn:
            await conn.execute(insert(AutoAnswerDecision), values)
