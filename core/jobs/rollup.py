"""Daily usage rollups: token_usage summed into daily_usage per day and key.

The key is day x workspace x user x channel x namespace x model x operation; NULL user,
channel and namespace are legal key parts, a NULL model is stored as ''. ``requests`` counts
answered questions (a question's query embedding), ``calls`` the rows of each operation.
Rolling a day deletes and re-inserts its rows in one transaction, so running a day twice gives
the same rows and the rollup always equals the raw sum.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, select

from core.db.access import Database
from core.db.models import DailyUsage, TokenUsage
from core.db.types import new_id
from core.db.usage import is_request
from core.jobs.clock import Clock, day_range, system_clock

log = logging.getLogger(__name__)

INSERT_BATCH = 5000


def _aggregate(day: date) -> Any:
    start, end = day_range(day)
    model = func.coalesce(TokenUsage.model, "")
    return (
        select(
            TokenUsage.workspace_id,
            TokenUsage.user_id,
            TokenUsage.channel_id,
            TokenUsage.namespace_id,
            model,
            TokenUsage.operation,
            func.sum(case((is_request(), 1), else_=0)),
            func.count(),
            func.sum(TokenUsage.prompt_tokens),
            func.sum(TokenUsage.completion_tokens),
            func.sum(TokenUsage.embedding_tokens),
            func.sum(TokenUsage.cost),
        )
        .where(TokenUsage.created_at >= start, TokenUsage.created_at < end)
        .group_by(
            TokenUsage.workspace_id,
            TokenUsage.user_id,
            TokenUsage.channel_id,
            TokenUsage.namespace_id,
            model,
            TokenUsage.operation,
        )
    )


def _daily_row(day: date, row: Any) -> dict[str, Any]:
    ws, user, channel, namespace, model, operation, requests, calls, *tokens = row
    prompt, completion, embedding, cost = tokens
    return {
        "id": new_id(),
        "day": day,
        "workspace_id": ws,
        "user_id": user,
        "channel_id": channel,
        "namespace_id": namespace,
        "model": model,
        "operation": operation,
        "requests": int(requests or 0),
        "calls": int(calls or 0),
        "prompt_tokens": int(prompt or 0),
        "completion_tokens": int(completion or 0),
        "embedding_tokens": int(embedding or 0),
        "cost": cost or 0,
    }


class UsageRollup:
    """Writes daily_usage from token_usage; idempotent per day."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = system_clock,
        lookback_days: int = 366,
    ) -> None:
        self._db = db
        self._clock = clock
        self._lookback = lookback_days

    async def rollup_day(self, day: date) -> int:
        """Replace the rows of ``day`` (UTC) with fresh sums; returns how many were written."""
        async with self._db.session() as db, db.begin():
            rows = (await db.execute(_aggregate(day))).all()
            await db.execute(delete(DailyUsage).where(DailyUsage.day == day))
            values = [_daily_row(day, row) for row in rows]
            for start in range(0, len(values), INSERT_BATCH):
                await db.execute(insert(DailyUsage), values[start : start + INSERT_BATCH])
        return len(values)

    async def pending_days(self) -> list[date]:
        """Days after the last rolled-up day (or the first raw row) up to yesterday."""
        yesterday = self._clock().date() - timedelta(days=1)
        floor = yesterday - timedelta(days=self._lookback - 1)
        async with self._db.session() as db:
            last = (await db.execute(select(func.max(DailyUsage.day)))).scalar_one_or_none()
            first_raw = (
                await db.execute(select(func.min(TokenUsage.created_at)))
            ).scalar_one_or_none()
        if last is not None:
            start = last + timedelta(days=1)
        elif first_raw is not None:
            start = first_raw.date()
        else:
            return []
        start = max(start, floor)
        return [start + timedelta(days=i) for i in range((yesterday - start).days + 1)]

    async def backfill(self) -> dict[str, int]:
        """Roll up every pending day (on start: the days missed while the bot was down)."""
        return await self._roll(await self.pending_days())

    async def daily(self) -> dict[str, int]:
        """The scheduled run after midnight: yesterday (again, if it was rolled) and any gap."""
        yesterday = self._clock().date() - timedelta(days=1)
        days = sorted({*await self.pending_days(), yesterday})
        return await self._roll(days)

    async def _roll(self, days: list[date]) -> dict[str, int]:
        rows = 0
        for day in days:
            rows += await self.rollup_day(day)
        if days:
            log.info("rolled up %d day(s) from %s to %s", len(days), days[0], days[-1])
        return {"days": len(days), "rows": rows}
