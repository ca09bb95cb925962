"""Scheduled-job benchmark: rollup and retention throughput, answer-path p99 during retention.

For SQLite (a migrated temp file) and PostgreSQL (a temporary database, created, migrated and
dropped here):

1. ``--rows`` token_usage rows for one UTC day (spread over users x channels x namespaces x
   models) rolled up by ``UsageRollup.rollup_day``; the baseline is the bare GROUP BY query
   the rollup runs (read only), so the ratio is what delete + insert + transaction add.
2. ``--rows`` messages older than 90 days deleted by ``Retention`` in batches of
   ``--batch`` rows (one transaction each), rows/s.
3. While (2) runs, one task repeats the answer path's database work (get-or-create of
   workspace, channel, user and session; the question and the answer through
   ``ConversationStore.add_message``; ``UsageStore.record_many``; ``history``) and records
   its latency. The same loop runs first on the idle database: p99 busy / p99 idle is the
   figure of merit, target under 2x.

The two foreign-key indexes that bulk message deletion needs (``messages.parent_id``,
``token_usage.message_id``; see tests/jobs/data.py) are created before measuring.

    .venv/bin/python -m bench.jobs --rows 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from core.db import migrate
from core.db.access import Database
from core.db.conversation import ConversationStore
from core.db.engine import create_engine
from core.db.identity import IdentityStore
from core.db.models import Message, TokenUsage
from core.db.records import MessageInput, UsageInput
from core.db.types import new_id
from core.db.usage import UsageStore
from core.jobs.clock import day_start
from core.jobs.retention import Retention, RetentionPolicy
from core.jobs.rollup import UsageRollup, _aggregate
from tests.jobs.data import FK_INDEXES

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET = 2.0
DAY = date(2025, 6, 14)
NOW = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
CHUNK = 20_000


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 100 else max(samples)


async def _pg_database(url: str) -> tuple[str, str, Callable[[], Awaitable[None]]]:
    name = f"lk_bench_jobs_{uuid.uuid4().hex[:8]}"
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    target = make_url(url).set(database=name).render_as_string(hide_password=False)
    return name, target, lambda: admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Setup:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, echo=False)
        self.database = Database(self.engine)
        self.ids = IdentityStore(self.database)

    async def prepare(self) -> None:
        async with self.engine.begin() as conn:
            for ddl in FK_INDEXES:
                await conn.exec_driver_sql(ddl)
        ws = await self.ids.workspace("slack", "TBENCH")
        self.workspace = ws.id
        self.channels = [(await self.ids.channel(ws.id, f"C{i}")).id for i in range(10)]
        self.users = [(await self.ids.user(ws.id, f"U{i}")).id for i in range(50)]
        session = await self.ids.session(ws.id, self.channels[0], "old-thread")
        self.old_session = session.id

    async def insert(self, model: Any, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), CHUNK):
            async with self.database.session() as db, db.begin():
                await db.execute(insert(model), rows[start : start + CHUNK])

    def usage_rows(self, n: int) -> list[dict[str, Any]]:
        start, models = day_start(DAY), ("llama-70b", "llama-8b", None)
        return [
            {
                "id": new_id(),
                "workspace_id": self.workspace,
                "user_id": self.users[i % 50] if i % 17 else None,
                "channel_id": self.channels[i % 10],
                "namespace_id": None,
                "operation": "embedding" if i % 5 == 0 else "chat",
                "model": models[i % 3],
                "prompt_tokens": 100 + i % 900,
                "completion_tokens": i % 300,
                "embedding_tokens": 0,
                "cost": Decimal(i % 1000) / Decimal(1_000_000),
                "created_at": start + timedelta(microseconds=i * 80_000),
            }
            for i in range(n)
        ]

    def message_rows(self, n: int) -> list[dict[str, Any]]:
        old = NOW - timedelta(days=120)
        return [
            {
                "id": new_id(),
                "session_id": self.old_session,
                "role": "user" if i % 2 == 0 else "assistant",
                "content": "an old question about the expense policy" * 2,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "created_at": old + timedelta(milliseconds=i),
            }
            for i in range(n)
        ]


async def answer_work(s: Setup, n: int) -> float:
    """The database work of one answer; returns seconds."""
    started = time.perf_counter()
    ws = await s.ids.workspace("slack", "TBENCH")
    channel = await s.ids.channel(ws.id, f"C{n % 10}")
    user = await s.ids.user(ws.id, f"U{n % 50}")
    session = await s.ids.session(ws.id, channel.id, f"live-{n % 200}")
    store = ConversationStore(s.database)
    question = await store.add_message(
        MessageInput(session.id, "user", "how do I file expenses?", user.id)
    )
    await store.history(session.id, limit=10)
    await store.add_message(
        MessageInput(session.id, "assistant", "Use the form.", model="llama", parent_id=question.id)
    )
    await UsageStore(s.database).record_many(
        [
            UsageInput(
                ws.id,
                "chat",
                "llama",
                user.id,
                channel.id,
                message_id=question.id,
                prompt_tokens=900,
                completion_tokens=80,
                cost=Decimal("0.0001"),
            ),
        ]
    )
    return time.perf_counter() - started


async def bench_backend(
    label: str, url: str, rows: int, batch: int, idle_ops: int, pause: float
) -> dict:
    s = Setup(url)
    out: dict[str, Any] = {"db": label}
    try:
        await s.prepare()
        await s.insert(TokenUsage, s.usage_rows(rows))
        async with s.database.session() as db:
            started = time.perf_counter()
            groups = len((await db.execute(_aggregate(DAY))).all())
            out["aggregate_s"] = time.perf_counter() - started
        rollup = UsageRollup(s.database)
        started = time.perf_counter()
        written = await rollup.rollup_day(DAY)
        out["rollup_s"] = time.perf_counter() - started
        assert written == groups
        out["rollup_rows_s"] = rows / out["rollup_s"]
        await s.insert(Message, s.message_rows(rows))
        for i in range(20):  # warm up the answer path
            await answer_work(s, i)
        idle = [await answer_work(s, i) for i in range(idle_ops)]
        retention = Retention(
            s.database,
            clock=lambda: NOW,
            policy=RetentionPolicy(batch_size=batch, pause_ratio=pause),
        )
        task = asyncio.create_task(retention.purge_messages())
        started = time.perf_counter()
        busy: list[float] = []
        while not task.done():
            busy.append(await answer_work(s, len(busy)))
        deleted = await task
        out["retention_s"] = time.perf_counter() - started
        assert deleted == rows, (deleted, rows)
        async with s.database.session() as db:
            left = (await db.execute(select(func.count()).select_from(Message))).scalar_one()
        assert left == 2 * (20 + idle_ops + len(busy)), left
        out |= {
            "retention_rows_s": rows / out["retention_s"],
            "idle_p99_ms": p99(idle) * 1000,
            "busy_p99_ms": p99(busy) * 1000,
            "busy_ops": len(busy),
            "idle_median_ms": statistics.median(idle) * 1000,
            "busy_median_ms": statistics.median(busy) * 1000,
        }
        out["p99_ratio"] = out["busy_p99_ms"] / out["idle_p99_ms"]
    finally:
        await s.database.engine.dispose()
    return out


def report(results: list[dict], rows: int, batch: int, pause: float) -> None:
    print(f"\nrows={rows:,} batch={batch:,} pause_ratio={pause:g}")
    head = (
        f"{'db':<10} {'rollup rows/s':>14} {'rollup/agg':>10} {'retention rows/s':>17} "
        f"{'idle p99 ms':>11} {'busy p99 ms':>11} {'ratio':>6} {'busy ops':>8}  verdict"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        verdict = "OK" if r["p99_ratio"] < TARGET else f"over {TARGET:g}x"
        print(
            f"{r['db']:<10} {r['rollup_rows_s']:>14,.0f} {r['rollup_s'] / r['aggregate_s']:>10.2f} "
            f"{r['retention_rows_s']:>17,.0f} {r['idle_p99_ms']:>11.1f} {r['busy_p99_ms']:>11.1f} "
            f"{r['p99_ratio']:>6.2f} {r['busy_ops']:>8}  {verdict}"
        )
        print(
            f"{'':<10} rollup {r['rollup_s']:.1f}s (GROUP BY alone {r['aggregate_s']:.1f}s), "
            f"retention {r['retention_s']:.1f}s, median answer-path {r['idle_median_ms']:.1f} ms "
            f"idle / {r['busy_median_ms']:.1f} ms busy"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=RetentionPolicy().batch_size)
    parser.add_argument("--pause-ratio", type=float, default=RetentionPolicy().pause_ratio)
    parser.add_argument("--idle-ops", type=int, default=400)
    parser.add_argument("--postgres", default=os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG))
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    results = []
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
            await asyncio.to_thread(migrate.upgrade, url)
            results.append(
                await bench_backend(
                    "sqlite", url, args.rows, args.batch, args.idle_ops, args.pause_ratio
                )
            )
            print(results[-1])
    if args.only in (None, "postgresql"):
        _, url, drop = await _pg_database(args.postgres)
        try:
            await asyncio.to_thread(migrate.upgrade, url)
            results.append(
                await bench_backend(
                    "postgresql", url, args.rows, args.batch, args.idle_ops, args.pause_ratio
                )
            )
            print(results[-1])
        finally:
            await drop()
    report(results, args.rows, args.batch, args.pause_ratio)


if __name__ == "__main__":
    asyncio.run(main())
