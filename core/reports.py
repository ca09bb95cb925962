"""Usage reports: totals and a breakdown by day, user, channel, namespace or model."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import Channel, Namespace, TokenUsage, User

DIMENSIONS = ("day", "user", "channel", "namespace", "model")


@dataclass(frozen=True, slots=True)
class ReportRow:
    key: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    embedding_tokens: int
    cost: Decimal

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.embedding_tokens


@dataclass(frozen=True, slots=True)
class UsageReport:
    since: datetime
    until: datetime
    by: str
    rows: tuple[ReportRow, ...]

    @property
    def total(self) -> ReportRow:
        return ReportRow(
            "total",
            sum(r.requests for r in self.rows),
            sum(r.prompt_tokens for r in self.rows),
            sum(r.completion_tokens for r in self.rows),
            sum(r.embedding_tokens for r in self.rows),
            sum((r.cost for r in self.rows), Decimal(0)),
        )

    def table(self) -> str:
        """A fixed-width text table (monospace in chat code blocks and terminals)."""
        head = (
            f"{self.by:<24} {'requests':>8} {'prompt':>10} {'completion':>10} "
            f"{'embed':>8} {'cost USD':>10}"
        )
        lines = [head, "-" * len(head)]
        for r in (*self.rows, self.total):
            lines.append(
                f"{r.key[:24]:<24} {r.requests:>8,} {r.prompt_tokens:>10,} "
                f"{r.completion_tokens:>10,} {r.embedding_tokens:>8,} {r.cost:>10.4f}"
            )
        return "\n".join(lines)


def _key_column(by: str) -> Any:
    if by == "day":
        return cast(TokenUsage.created_at, Date)
    if by == "user":
        return func.coalesce(User.display_name, User.external_id, "(deleted user)")
    if by == "channel":
        return func.coalesce(Channel.name, Channel.external_id, "(none)")
    if by == "namespace":
        return func.coalesce(Namespace.name, "(none)")
    return func.coalesce(TokenUsage.model, "(none)")


class ReportService:
    """Reads token usage for one workspace over a window."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def usage(
        self, workspace_id: uuid.UUID, *, since: datetime, until: datetime, by: str = "day"
    ) -> UsageReport:
        if by not in DIMENSIONS:
            raise ValueError(f"by must be one of {DIMENSIONS}")
        key = _key_column(by).label("key")
        stmt = (
            select(
                key,
                func.count(TokenUsage.id.distinct()).filter(TokenUsage.operation == "chat"),
                func.coalesce(func.sum(TokenUsage.prompt_tokens), 0),
                func.coalesce(func.sum(TokenUsage.completion_tokens), 0),
                func.coalesce(func.sum(TokenUsage.embedding_tokens), 0),
                func.coalesce(func.sum(TokenUsage.cost), 0),
            )
            .select_from(TokenUsage)
            .outerjoin(User, User.id == TokenUsage.user_id)
            .outerjoin(Channel, Channel.id == TokenUsage.channel_id)
            .outerjoin(Namespace, Namespace.id == TokenUsage.namespace_id)
            .where(
                TokenUsage.workspace_id == workspace_id,
                TokenUsage.created_at >= since,
                TokenUsage.created_at < until,
            )
            .group_by(key)
            .order_by(key)
        )
        async with self._sessions() as db:
            rows = (await db.execute(stmt)).all()
        return UsageReport(
            since,
            until,
            by,
            tuple(
                ReportRow(str(k), int(n), int(p), int(c), int(e), Decimal(str(cost)))
                for k, n, p, c, e, cost in rows
            ),
        )


def window(spec: str, now: datetime) -> tuple[datetime, datetime]:
    """'today', '7d' or '30d' (or 'Nd') as [since, until) in UTC."""
    start_today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if spec == "today":
        return start_today, now + timedelta(seconds=1)
    if spec.endswith("d") and spec[:-1].isdigit() and 0 < int(spec[:-1]) <= 3660:
        return start_today - timedelta(days=int(spec[:-1]) - 1), now + timedelta(seconds=1)
    raise ValueError("the period is today, 7d or 30d")
