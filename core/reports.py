"""Usage reports: totals and a breakdown by day, user, channel, namespace, model or operation.

A request is one answered question, extractive or LLM (each has exactly one query embedding);
broken down by operation, the count is of calls (embedding, condense, rewrite, chat, ingest).

Whole UTC days that the rollup has covered are read from daily_usage; the rest of the window
(today, a partial first day, days not rolled up yet) from the raw token_usage rows. The text
table and the PNG bar chart are rendered from the same ``UsageReport``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.access import Database
from core.db.models import Channel, DailyUsage, Namespace, TokenUsage, User, Workspace
from core.db.usage import is_request

DIMENSIONS = ("day", "user", "channel", "namespace", "model", "operation")
BAR_COLORS = ("#4c72b0", "#dd8452", "#55a868")  # prompt, completion, embedding


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

    @property
    def counted(self) -> str:
        """What the count column counts: answered questions, or calls by operation."""
        return "calls" if self.by == "operation" else "requests"

    def table(self) -> str:
        """A fixed-width text table (monospace in chat code blocks and terminals)."""
        width = max([24, *(len(r.key) for r in self.rows)]) if self.by != "day" else 24
        width = min(width, 48)
        head = (
            f"{self.by:<{width}} {self.counted:>8} {'prompt':>10} {'completion':>10} "
            f"{'embed':>8} {'cost USD':>10}"
        )
        lines = [head, "-" * len(head)]
        for r in (*self.rows, self.total):
            lines.append(
                f"{r.key[:width]:<{width}} {r.requests:>8,} {r.prompt_tokens:>10,} "
                f"{r.completion_tokens:>10,} {r.embedding_tokens:>8,} {r.cost:>10.4f}"
            )
        return "\n".join(lines)


_Sums = list[Any]  # requests (or calls), prompt, completion, embedding, cost


def _measures(model: Any, by: str) -> list[Any]:
    if model is TokenUsage:
        count = func.count() if by == "operation" else func.sum(case((is_request(), 1), else_=0))
    else:
        count = func.sum(DailyUsage.calls if by == "operation" else DailyUsage.requests)
    return [
        count,
        func.sum(model.prompt_tokens),
        func.sum(model.completion_tokens),
        func.sum(model.embedding_tokens),
        func.sum(model.cost),
    ]


def _raw_key(by: str, dialect: str) -> Any:
    if by == "day":
        if dialect == "postgresql":
            return func.date(func.timezone("UTC", TokenUsage.created_at))
        return func.date(TokenUsage.created_at)
    if by == "model":
        return func.coalesce(TokenUsage.model, "")
    if by == "operation":
        return TokenUsage.operation
    return getattr(TokenUsage, f"{by}_id")


def _daily_key(by: str) -> Any:
    if by == "day":
        return DailyUsage.day
    if by == "model":
        return DailyUsage.model
    if by == "operation":
        return DailyUsage.operation
    return getattr(DailyUsage, f"{by}_id")


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _rolled_span(since: datetime, until: datetime, last: date | None) -> tuple[date, date] | None:
    """Whole days [first, end) inside [since, until) that daily_usage already holds."""
    if last is None:
        return None
    first = since.date()
    if since > _midnight(first):
        first += timedelta(days=1)
    end = min(until.date(), last + timedelta(days=1))
    return (first, end) if first < end else None


def _add(totals: dict[Any, _Sums], rows: Iterable[Any], *, by: str) -> None:
    for key, *sums in rows:
        if by == "day" and isinstance(key, str):  # SQLite's date() gives text
            key = date.fromisoformat(key)
        acc = totals.setdefault(key, [0, 0, 0, 0, Decimal(0)])
        for i, value in enumerate(sums):
            acc[i] += Decimal(str(value or 0)) if i == 4 else int(value or 0)


class ReportService:
    """Reads token usage for one workspace (or all of them) over a window."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def usage(
        self,
        workspace_id: uuid.UUID | None,
        *,
        since: datetime,
        until: datetime,
        by: str = "day",
        ids: bool = False,
    ) -> UsageReport:
        """Usage in [since, until) (UTC) broken down ``by`` one of ``DIMENSIONS``; users,
        channels and namespaces by name, with their platform ids too when ``ids``."""
        if by not in DIMENSIONS:
            raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
        since, until = since.astimezone(UTC), until.astimezone(UTC)
        totals: dict[Any, _Sums] = {}
        async with self._db.session() as db:
            dialect = db.get_bind().dialect.name
            last = (await db.execute(select(func.max(DailyUsage.day)))).scalar_one_or_none()
            span = _rolled_span(since, until, last)
            raw = [(since, until)]
            if span is not None:
                key = _daily_key(by)
                stmt = select(key, *_measures(DailyUsage, by)).where(
                    DailyUsage.day >= span[0], DailyUsage.day < span[1]
                )
                if workspace_id is not None:
                    stmt = stmt.where(DailyUsage.workspace_id == workspace_id)
                _add(totals, (await db.execute(stmt.group_by(key))).all(), by=by)
                raw = [(since, _midnight(span[0])), (_midnight(span[1]), until)]
            key = _raw_key(by, dialect)
            for start, end in raw:
                if start >= end:
                    continue
                stmt = select(key, *_measures(TokenUsage, by)).where(
                    TokenUsage.created_at >= start, TokenUsage.created_at < end
                )
                if workspace_id is not None:
                    stmt = stmt.where(TokenUsage.workspace_id == workspace_id)
                _add(totals, (await db.execute(stmt.group_by(key))).all(), by=by)
            labels = await _labels(db, by, list(totals), ids=ids)
        rows = [
            ReportRow(labels[k], s[0], s[1], s[2], s[3], s[4].quantize(Decimal("1e-8")))
            for k, s in totals.items()
        ]
        if by == "day":
            rows.sort(key=lambda r: r.key)
        else:
            rows.sort(key=lambda r: (-r.tokens, -r.cost, r.key))
        return UsageReport(since, until, by, tuple(rows))

    async def find_workspace(self, ref: str) -> uuid.UUID | None:
        """A workspace by id, external id, or ``platform:external_id``; None if not exactly one."""
        conditions = [Workspace.external_id == ref]
        platform, _, external = ref.partition(":")
        if external:
            conditions.append(
                (Workspace.platform == platform) & (Workspace.external_id == external)
            )
        with contextlib.suppress(ValueError):
            conditions.append(Workspace.id == uuid.UUID(ref))
        async with self._db.session() as db:
            found = (await db.execute(select(Workspace.id).where(or_(*conditions)))).scalars().all()
        return found[0] if len(found) == 1 else None

    async def chart(self, report: UsageReport) -> bytes:
        """The report as a PNG bar chart (rendered in a worker thread)."""
        return await asyncio.to_thread(render_chart, report)


async def _labels(db: AsyncSession, by: str, keys: list[Any], *, ids: bool) -> dict[Any, str]:
    if by == "day":
        return {k: k.isoformat() for k in keys}
    if by in ("model", "operation"):
        return {k: k or "(none)" for k in keys}
    model: Any = {"user": User, "channel": Channel, "namespace": Namespace}[by]
    name, external = {
        "user": (User.display_name, User.external_id),
        "channel": (Channel.name, Channel.external_id),
        "namespace": (Namespace.name, None),
    }[by]
    wanted = [k for k in keys if k is not None]
    found: dict[Any, str] = {}
    for start in range(0, len(wanted), 1000):
        columns = [model.id, name] if external is None else [model.id, name, external]
        rows = await db.execute(select(*columns).where(model.id.in_(wanted[start : start + 1000])))
        for row in rows:
            found[row[0]] = _label(by, row[1], row[2] if external is not None else None, ids=ids)
    return {k: "(none)" if k is None else found.get(k, f"(deleted {by})") for k in keys}


def _label(by: str, name: str | None, external_id: str | None, *, ids: bool) -> str:
    """A name as people know it ('#' before a channel's), its platform id when asked or when
    the platform never gave a name."""
    if not name:
        return str(external_id or "(unnamed)")
    shown = f"#{name}" if by == "channel" else str(name)
    return f"{shown} ({external_id})" if ids and external_id else shown


def render_chart(report: UsageReport, *, width: float = 9.0, height: float = 4.5) -> bytes:
    """Stacked token bars (prompt, completion, embedding) per row of the report, as PNG bytes.

    Uses an Agg canvas built here (no pyplot, no global figure state), so it is safe in threads.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    total = report.total
    axes.set_title(
        f"Tokens by {report.by}, {report.since:%Y-%m-%d} to {report.until:%Y-%m-%d} "
        f"({total.tokens:,} tokens, ${total.cost:.2f})"
    )
    rows = report.rows[:40]
    if not rows:
        axes.text(0.5, 0.5, "No usage in this period", ha="center", va="center")
        axes.set_axis_off()
    else:
        positions = list(range(len(rows)))
        bottom = [0] * len(rows)
        series = (
            ("prompt", [r.prompt_tokens for r in rows]),
            ("completion", [r.completion_tokens for r in rows]),
            ("embedding", [r.embedding_tokens for r in rows]),
        )
        for (label, values), color in zip(series, BAR_COLORS, strict=True):
            axes.bar(positions, values, bottom=bottom, color=color, label=label)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        axes.set_xticks(positions, [r.key[:18] for r in rows], rotation=45, ha="right")
        axes.set_ylabel("tokens")
        axes.legend(loc="upper left")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def window(spec: str, now: datetime) -> tuple[datetime, datetime]:
    """'today', '7d' or '30d' (or 'Nd') as [since, until) in UTC."""
    start_today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if spec == "today":
        return start_today, now + timedelta(seconds=1)
    if spec.endswith("d") and spec[:-1].isdigit() and 0 < int(spec[:-1]) <= 3660:
        return start_today - timedelta(days=int(spec[:-1]) - 1), now + timedelta(seconds=1)
    raise ValueError("the period is today, 7d or 30d")
