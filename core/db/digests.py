"""Who wants the weekly gap digest, and the week each was last sent."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select, update

from core.db.access import Database
from core.db.models import GapDigestSetting
from core.db.statements import upsert
from core.db.types import utcnow


class DigestStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def set_enabled(self, user_id: uuid.UUID, enabled: bool) -> None:
        """Turn a person's digest on or off (the week last sent is kept)."""
        stmt = upsert(
            self._db.dialect,
            GapDigestSetting,
            ("user_id",),
            update=("enabled", "updated_at"),
        )
        async with self._db.transaction() as conn:
            await conn.execute(
                stmt, {"user_id": user_id, "enabled": enabled, "updated_at": utcnow()}
            )

    async def enabled(self, user_id: uuid.UUID) -> bool:
        stmt = select(GapDigestSetting.enabled).where(GapDigestSetting.user_id == user_id)
        async with self._db.read() as conn:
            return bool((await conn.execute(stmt)).scalar_one_or_none())

    async def subscribers(self) -> set[uuid.UUID]:
        """The people who turned their digest on."""
        stmt = select(GapDigestSetting.user_id).where(GapDigestSetting.enabled.is_(True))
        async with self._db.read() as conn:
            return set((await conn.execute(stmt)).scalars())

    async def claim_week(self, user_id: uuid.UUID, week: str) -> bool:
        """Mark ``week`` (``2026-W50``) as sent to ``user_id``; False when it was already, and
        nothing is to be sent."""
        row = GapDigestSetting
        async with self._db.transaction() as conn:
            claimed = await conn.execute(
                update(row)
                .where(
                    row.user_id == user_id,
                    or_(row.last_sent_week.is_(None), row.last_sent_week != week),
                )
                .values(last_sent_week=week)
            )
        return bool(claimed.rowcount == 1)

    async def release_week(self, user_id: uuid.UUID, week: str) -> None:
        """Undo :meth:`claim_week` after a failed send, so a later run that week tries again."""
        row = GapDigestSetting
        async with self._db.transaction() as conn:
            await conn.execute(
                update(row)
                .where(row.user_id == user_id, row.last_sent_week == week)
                .values(last_sent_week=None)
            )
