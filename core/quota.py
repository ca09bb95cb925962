"""Daily token quotas per user and per workspace, counted from SQL (restarts and replicas agree).

Questions and uploads draw on separate allowances: indexing files is accounted under its own
operation (``ingest``) and checked before embedding against the upload limits, so one member's
uploads can never lock everyone else out of asking.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from core.db.conversation import ConversationStore
from core.db.types import utcnow
from core.db.usage import Limits, UsageStore
from core.errors import QuotaExceeded, RateLimited


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

    async def check_upload(
        self, workspace_id: uuid.UUID, user_id: uuid.UUID | None, tokens: int, filename: str
    ) -> None:
        """Raise ``QuotaExceeded`` when indexing ``tokens`` more today would pass the user's or
        the workspace's upload allowance."""
        now = self._clock()
        since = day_start(now)
        limits = await self._usage.limits(workspace_id, user_id)
        checks: list[tuple[uuid.UUID | None, int | None, str]] = [
            (None, limits.workspace_daily_upload_tokens, "This workspace has")
        ]
        if user_id is not None:
            checks.insert(0, (user_id, limits.user_daily_upload_tokens, "You have"))
        for who, limit, subject in checks:
            if limit is None:
                continue
            used = await self._usage.tokens_since(
                workspace_id=workspace_id, since=since, user_id=who, uploads=True
            )
            if used + tokens > limit:
                left = max(0, limit - used)
                raise QuotaExceeded(
                    f"I can't index {filename}: it needs about {tokens:,} tokens, and "
                    f"{subject.lower()} {left:,} of {limit:,} upload tokens left today. "
                    f"The allowance resets at 00:00 UTC (in {_until(now)}); questions are "
                    "not affected.",
                    reason=f"over the daily upload allowance ({used:,} + {tokens:,} > {limit:,})",
                )

    async def status(self, workspace_id: uuid.UUID, user_id: uuid.UUID | None) -> str:
        """A one-paragraph summary for `quota show`."""
        since = day_start(self._clock())
        limits = await self._usage.limits(workspace_id, user_id)
        lines = []
        for uploads, ws_limit, user_limit, what in (
            (False, limits.workspace_daily_tokens, limits.user_daily_tokens, "tokens"),
            (
                True,
                limits.workspace_daily_upload_tokens,
                limits.user_daily_upload_tokens,
                "upload tokens",
            ),
        ):
            ws_used = await self._usage.tokens_since(
                workspace_id=workspace_id, since=since, uploads=uploads
            )
            lines.append(f"Workspace: {ws_used:,} of {_limit(ws_limit)} {what} today.")
            if user_id is not None:
                used = await self._usage.tokens_since(
                    workspace_id=workspace_id, since=since, user_id=user_id, uploads=uploads
                )
                lines.append(f"You: {used:,} of {_limit(user_limit)} {what} today.")
        lines.append("Limits reset at 00:00 UTC.")
        return "\n".join(lines)


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else f"{value:,}"


class QuestionRate:
    """At most ``limit`` questions per user in any ``window``, counted from the stored questions
    (so every replica agrees) plus the ones this process is answering right now."""

    def __init__(
        self,
        conversation: ConversationStore,
        *,
        limit: int | None,
        window: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._conversation = conversation
        self._limit = limit
        self._window = window
        self._clock = clock
        self._answering: Counter[uuid.UUID] = Counter()

    @asynccontextmanager
    async def admit(self, user_id: uuid.UUID) -> AsyncIterator[None]:
        """Hold one question of ``user_id`` in flight; ``RateLimited`` when it is one too many."""
        if self._limit is not None:
            await self._check(user_id, self._limit)
        self._answering[user_id] += 1
        try:
            yield
        finally:
            self._answering[user_id] -= 1
            if self._answering[user_id] <= 0:
                del self._answering[user_id]

    async def _check(self, user_id: uuid.UUID, limit: int) -> None:
        now = self._clock()
        room = limit - self._answering[user_id]
        if room <= 0:
            self._refuse(limit, wait=timedelta(seconds=5))
        oldest = await self._conversation.nth_recent_question(
            user_id, n=room, since=now - self._window
        )
        if oldest is not None:
            self._refuse(limit, wait=oldest + self._window - now)

    def _refuse(self, limit: int, *, wait: timedelta) -> None:
        seconds = max(1, int(wait.total_seconds()) + 1)
        raise RateLimited(
            f"You've asked {limit} questions in the last {_span(self._window)}, the most "
            f"allowed. Please try again in {_span(timedelta(seconds=seconds))}.",
            retry_after=seconds,
        )


def _span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {rest} s" if rest and minutes < 5 else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")
