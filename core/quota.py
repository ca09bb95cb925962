"""Daily token quotas per user and per workspace, counted from SQL (restarts and replicas agree)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from core.db.types import utcnow
from core.db.usage import Limits, UsageStore
from core.errors import QuotaExceeded


def day_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day: quotas reset then."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _until(now: datetime) -> str:
    left = day_start(now) + timedelta(days=1) - now
    hours, rest = divmod(int(left.total_seconds()), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60 + 1} min"


class QuotaService:
    """Checks limits before generating; the counts are the token_usage rows of today (UTC)."""

    def __init__(self, usage: UsageStore, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._usage = usage
        self._clock = clock

    async def check(self, workspace_id: uuid.UUID, user_id: uuid.UUID | None) -> Limits:
        """Raise ``QuotaExceeded`` with the limit and the reset time when one is reached."""
        now = self._clock()
        limits, user_used, ws_used = await self._usage.quota_state(
            workspace_id, user_id, since=day_start(now)
        )
        if limits.user_daily_tokens is not None and user_id is not None:
            used = user_used
            if used >= limits.user_daily_tokens:
                raise QuotaExceeded(
                    f"You have used {used:,} of your {limits.user_daily_tokens:,} tokens for "
                    f"today. Your limit resets at 00:00 UTC (in {_until(now)})."
                )
        if limits.workspace_daily_tokens is not None:
            used = ws_used
            if used >= limits.workspace_daily_tokens:
                raise QuotaExceeded(
                    f"This workspace has used {used:,} of its {limits.workspace_daily_tokens:,} "
                    f"tokens for today. The limit resets at 00:00 UTC (in {_until(now)})."
                )
        return limits

    async def status(self, workspace_id: uuid.UUID, user_id: uuid.UUID | None) -> str:
        """A one-paragraph summary for `quota show`."""
        since = day_start(self._clock())
        limits = await self._usage.limits(workspace_id, user_id)
        ws_used = await self._usage.tokens_since(workspace_id=workspace_id, since=since)
        lines = [
            f"Workspace: {ws_used:,} of {_limit(limits.workspace_daily_tokens)} tokens today.",
        ]
        if user_id is not None:
            used = await self._usage.tokens_since(
                workspace_id=workspace_id, since=since, user_id=user_id
            )
            lines.append(f"You: {used:,} of {_limit(limits.user_daily_tokens)} tokens today.")
        lines.append("Limits reset at 00:00 UTC.")
        return "\n".join(lines)


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"
