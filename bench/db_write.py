"""Database write benchmark: the stores against a raw driver ``executemany`` of the same rows.

For SQLite (a migrated temp file) and PostgreSQL (a temporary database, created and dropped
here), inserts ``--rows`` messages and ``--rows`` token_usage rows through
``ConversationStore.add_messages`` / ``UsageStore.record_many`` in batches, and the same rows
(same columns, same values, prebuilt tuples) through aiosqlite / asyncpg ``executemany`` with
one transaction per batch. A smaller count goes through ``add_message`` / ``record`` (one call
and one transaction per row), next to a raw one-row-per-transaction baseline.

Rows look like real traffic: user and assistant messages alternate (a user message has a user
and a platform id, an assistant message a model, tokens and timing), and chat usage rows
alternate with embedding rows. Every measurement starts from a fresh copy of one migrated
template that holds a workspace, a channel, a user and ``--sessions`` sessions made through
``IdentityStore``.

    .venv/bin/python -m bench.db_write --rows 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from core.db import migrate
from core.db.conversation import ConversationStore
from core.db.engine import SQLITE_PRAGMAS, create_engine, session_factory
from core.db.identity import IdentityStore
from core.db.models import Message, TokenUsage
from core.db.records import MessageInput, UsageInput
from core.db.types import new_id
from core.db.usage import UsageStore

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET = 2.0  # store seconds / raw seconds, bulk API

MESSAGE_COLUMNS = (
    "id",
    "session_id",
    "user_id",
    "role",
    "content",
    "platform_message_id",
    "parent_id",
    "prompt_tokens",
    "completion_tokens",
    "model",
    "processing_time_ms",
    "grounded",
    "created_at",
)
USAGE_COLUMNS = (
    "id",
    "workspace_id",
    "user_id",
    "channel_id",
    "namespace_id",
    "message_id",
    "operation",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "embedding_tokens",
    "cost",
    "latency_ms",
    "created_at",
)
BASE_TIME = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ANSWER = (
    "The staging database credentials rotate every ninety days. Run the rotation job from the "
    "ops runbook, update the secret in the vault, then restart the workers one at a time so "
    "that no queue is left without a consumer. The runbook lists the order of the services. "
) * 2


@dataclass(frozen=True, slots=True)
class Ids:
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    user_id: uuid.UUID
    session_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class Result:
    backend: str
    table: str
    mode: str
    rows: int
    batch: int
    seconds: float


# --- data -----------------------------------------------------------------------------------


def make_messages(ids: Ids, n: int) -> list[MessageInput]:
    """Alternating user questions and assistant answers, spread over the sessions."""
    out = []
    for i in range(n):
        session = ids.session_ids[(i // 2) % len(ids.session_ids)]
        at = BASE_TIME + timedelta(milliseconds=i)
        if i % 2 == 0:
            text = (
                f"How do I rotate the staging credentials for service {i}? Asking for deploy {i}."
            )
            out.append(
                MessageInput(
                    session_id=session,
                    role="user",
                    content=text,
                    user_id=ids.user_id,
                    platform_message_id=f"{1736150400 + i}.{i % 1000000:06d}",
                    created_at=at,
                )
            )
        else:
            out.append(
                MessageInput(
                    session_id=session,
                    role="assistant",
                    content=f"{ANSWER}[{i}]",
                    prompt_tokens=900 + i % 100,
                    completion_tokens=180 + i % 50,
                    model="llama-3.3-70b-versatile",
                    processing_time_ms=800 + i % 700,
                    grounded=i % 3 != 0,
                    created_at=at,
                )
            )
    return out


def make_usage(ids: Ids, n: int) -> list[UsageInput]:
    """Chat calls alternating with embedding calls."""
    out = []
    for i in range(n):
        common: dict[str, Any] = {
            "workspace_id": ids.workspace_id,
            "user_id": ids.user_id,
            "channel_id": ids.channel_id,
            "created_at": BASE_TIME + timedelta(milliseconds=i),
        }
        if i % 2 == 0:
            out.append(
                UsageInput(
                    operation="chat",
                    model="llama-3.3-70b-versatile",
                    prompt_tokens=900 + i % 100,
                    completion_tokens=180 + i % 50,
                    cost=Decimal("0.00071200"),
                    latency_ms=800 + i % 700,
                    **common,
                )
            )
        else:
            out.append(
                UsageInput(
                    operation="embedding",
                    model="all-MiniLM-L6-v2",
                    embedding_tokens=40 + i % 30,
                    **common,
                )
            )
    return out


def _tuples(items: Sequence[Any], columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows as the driver receives them: a fresh id, then the input's own fields."""
    names = {f.name for f in fields(items[0])}
    return [
        tuple(new_id() if c == "id" else getattr(item, c) if c in names else None for c in columns)
        for item in items
    ]


def _sqlite_value(value: Any) -> Any:
    """What SQLAlchemy hands sqlite3 for these column types (Uuid, UTCDateTime, Numeric)."""
    if isinstance(value, uuid.UUID):
        return value.hex
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, Decimal):
        return float(value)
    return value


def _chunks(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [seq[i : i + size] for i in range(0, len(seq), size)]


# --- backends -------------------------------------------------------------------------------


class Sqlite:
    """A migrated template file; every measurement works on its own copy."""

    name = "sqlite"
    marker = "?"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = folder / "template.db"
        self._n = 0

    def url(self, path: Path) -> str:
        return f"sqlite+aiosqlite:///{path}"

    async def create_template(self) -> str:
        await asyncio.to_thread(migrate.upgrade, self.url(self.template))
        return self.url(self.template)

    async def fresh(self) -> str:
        self._n += 1
        target = self.folder / f"run{self._n}.db"
        await asyncio.to_thread(shutil.copyfile, self.template, target)
        return self.url(target)

    async def discard(self, url: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{make_url(url).database}{suffix}").unlink(missing_ok=True)

    async def close(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self.folder, True)

    def wire(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [tuple(_sqlite_value(v) for v in row) for row in rows]

    async def raw(self, url: str) -> RawSqlite:
        conn = await aiosqlite.connect(make_url(url).database or "", timeout=30)
        for pragma in SQLITE_PRAGMAS:
            await conn.execute(pragma)
        return RawSqlite(conn)


class RawSqlite:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    async def many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        await self.conn.executemany(sql, rows)
        await self.conn.commit()

    async def each(self, statements: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        for sql, params in statements:
            await self.conn.execute(sql, params)
        await self.conn.commit()

    async def close(self) -> None:
        await self.conn.close()


class Postgres:
    """A migrated template database; every measurement works on its own copy of it."""

    name = "postgresql"
    marker = "$"

    def __init__(self, url: str) -> None:
        self.base = make_url(url)
        self.template = f"lk_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._made: list[str] = []
        self._n = 0

    def _dsn(self, database: str | None = None) -> str:
        parsed = self.base.set(drivername="postgresql")
        if database is not None:
            parsed = parsed.set(database=database)
        return parsed.render_as_string(hide_password=False)

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self._dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def create_template(self) -> str:
        await self._admin(f'CREATE DATABASE "{self.template}"')
        self._made.append(self.template)
        await asyncio.to_thread(migrate.upgrade, self.url(self.template))
        return self.url(self.template)

    async def fresh(self) -> str:
        self._n += 1
        name = f"{self.template}_r{self._n}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        self._made.append(name)
        return self.url(name)

    async def discard(self, url: str) -> None:
        name = make_url(url).database
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self._made:
            self._made.remove(name)

    async def close(self) -> None:
        for name in reversed(self._made):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()

    def wire(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return rows  # asyncpg takes UUID, aware datetime, Decimal and bool as they are

    async def raw(self, url: str) -> RawPostgres:
        return RawPostgres(await asyncpg.connect(self._dsn(make_url(url).database)))


class RawPostgres:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def many(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        async with self.conn.transaction():
            await self.conn.executemany(sql, rows)

    async def each(self, statements: Sequence[tuple[str, tuple[Any, ...]]]) -> None:
        async with self.conn.transaction():
            for sql, params in statements:
                await self.conn.execute(sql, *params)

    async def close(self) -> None:
        await self.conn.close()


Backend = Sqlite | Postgres


def _insert_sql(backend: Backend, table: str, columns: Sequence[str]) -> str:
    if backend.marker == "?":
        marks = ", ".join("?" for _ in columns)
    else:
        marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def _touch_sql(backend: Backend) -> str:
    if backend.marker == "?":
        return "UPDATE sessions SET last_activity_at = ? WHERE id = ?"
    return "UPDATE sessions SET last_activity_at = $1 WHERE id = $2"


# --- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    messages: list[MessageInput]
    usage: list[UsageInput]
    message_rows: list[tuple[Any, ...]]  # wire values, MESSAGE_COLUMNS order
    usage_rows: list[tuple[Any, ...]]  # wire values, USAGE_COLUMNS order
    batch: int
    per_row: int


Timings = dict[str, tuple[int, int, float]]  # table -> (rows, batch, seconds)


async def _clock(fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def build_ids(url: str, sessions: int) -> Ids:
    """A workspace, channel, user and ``sessions`` threads, made through IdentityStore."""
    engine = create_engine(url)
    try:
        ids = IdentityStore(session_factory(engine))
        ws = await ids.workspace("slack", "TBENCH", name="Bench")
        ch = await ids.channel(ws.id, "CBENCH", name="general")
        user = await ids.user(ws.id, "UBENCH", display_name="Ada")
        made = [
            await ids.session(ws.id, ch.id, f"1736150400.{k:06d}", title=f"thread {k}")
            for k in range(sessions)
        ]
    finally:
        await engine.dispose()
    return Ids(ws.id, ch.id, user.id, tuple(s.id for s in made))


async def store_bulk(url: str, work: Workload) -> Timings:
    engine = create_engine(url)
    try:
        async with engine.connect():
            pass  # open the pooled connection before the clock starts
        sessions = session_factory(engine)
        conv, usage = ConversationStore(sessions), UsageStore(sessions)

        async def messages() -> None:
            for chunk in _chunks(work.messages, work.batch):
                await conv.add_messages(chunk)

        async def usage_rows() -> None:
            for chunk in _chunks(work.usage, work.batch):
                await usage.record_many(chunk)

        n, b = len(work.messages), work.batch
        return {
            "messages": (n, b, await _clock(messages)),
            "token_usage": (len(work.usage), b, await _clock(usage_rows)),
        }
    finally:
        await engine.dispose()


async def store_per_row(url: str, work: Workload) -> Timings:
    engine = create_engine(url)
    try:
        async with engine.connect():
            pass
        sessions = session_factory(engine)
        conv, usage = ConversationStore(sessions), UsageStore(sessions)

        async def messages() -> None:
            for item in work.messages[: work.per_row]:
                await conv.add_message(item)

        async def usage_rows() -> None:
            for u in work.usage[: work.per_row]:
                await usage.record(u)

        k = work.per_row
        return {
            "messages": (k, 1, await _clock(messages)),
            "token_usage": (k, 1, await _clock(usage_rows)),
        }
    finally:
        await engine.dispose()


async def raw_bulk(backend: Backend, url: str, work: Workload) -> Timings:
    raw = await backend.raw(url)
    try:
        out: Timings = {}
        for table, columns, rows in (
            ("messages", MESSAGE_COLUMNS, work.message_rows),
            ("token_usage", USAGE_COLUMNS, work.usage_rows),
        ):
            sql = _insert_sql(backend, table, columns)
            chunks = _chunks(rows, work.batch)

            async def run(sql: str = sql, chunks: list[Sequence[Any]] = chunks) -> None:
                for chunk in chunks:
                    await raw.many(sql, chunk)

            out[table] = (len(rows), work.batch, await _clock(run))
        return out
    finally:
        await raw.close()


async def raw_per_row(backend: Backend, url: str, work: Workload) -> Timings:
    """One transaction per row; a message also bumps its session, as add_message does."""
    raw = await backend.raw(url)
    try:
        insert_m = _insert_sql(backend, "messages", MESSAGE_COLUMNS)
        insert_u = _insert_sql(backend, "token_usage", USAGE_COLUMNS)
        touch = _touch_sql(backend)
        at, sid = MESSAGE_COLUMNS.index("created_at"), MESSAGE_COLUMNS.index("session_id")
        plans = {
            "messages": [
                [(insert_m, row), (touch, (row[at], row[sid]))]
                for row in work.message_rows[: work.per_row]
            ],
            "token_usage": [[(insert_u, row)] for row in work.usage_rows[: work.per_row]],
        }
        out: Timings = {}
        for table, plan in plans.items():

            async def run(plan: list[list[tuple[str, tuple[Any, ...]]]] = plan) -> None:
                for statements in plan:
                    await raw.each(statements)

            out[table] = (len(plan), 1, await _clock(run))
        return out
    finally:
        await raw.close()


# --- orchestration --------------------------------------------------------------------------

Mode = Callable[[Backend, str, Workload], Awaitable[Timings]]
MODES: dict[str, tuple[str, Mode]] = {
    # name -> (the raw mode it is compared with, runner)
    "raw executemany": ("", raw_bulk),
    "store bulk": ("raw executemany", lambda _b, url, w: store_bulk(url, w)),
    "raw per row": ("", raw_per_row),
    "store per row": ("raw per row", lambda _b, url, w: store_per_row(url, w)),
}


async def snapshot(url: str) -> tuple[Any, ...]:
    """Row counts and the first two rows of each table (without ids), read back through SA."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            out: list[Any] = []
            for model in (Message, TokenUsage):
                cols = [c for c in model.__table__.c if c.name != "id"]
                rows = (await conn.execute(select(*cols).order_by(cols[-1]).limit(2))).all()
                count = len((await conn.execute(select(model.__table__.c.id))).all())
                out += [count, [tuple(r) for r in rows]]
            return tuple(out)
    finally:
        await engine.dispose()


def workload(backend: Backend, ids: Ids, args: argparse.Namespace) -> Workload:
    messages, usage = make_messages(ids, args.rows), make_usage(ids, args.rows)
    return Workload(
        messages=messages,
        usage=usage,
        message_rows=backend.wire(_tuples(messages, MESSAGE_COLUMNS)),
        usage_rows=backend.wire(_tuples(usage, USAGE_COLUMNS)),
        batch=args.batch,
        per_row=min(args.per_row, args.rows),
    )


def _check(mode: str, timings: Timings, snap: tuple[Any, ...], first: tuple[Any, ...]) -> None:
    counts = (snap[0], snap[2])
    expected = (timings["messages"][0], timings["token_usage"][0])
    if counts != expected:
        raise RuntimeError(f"{mode}: {counts} rows in the tables, expected {expected}")
    if (snap[1], snap[3]) != (first[1], first[3]):
        raise RuntimeError(f"{mode}: stored values differ from the other modes'")


async def bench_backend(backend: Backend, args: argparse.Namespace) -> list[Result]:
    best: dict[tuple[str, str], Result] = {}
    try:
        ids = await build_ids(await backend.create_template(), args.sessions)
        work = workload(backend, ids, args)
        first: tuple[Any, ...] | None = None
        for _ in range(args.repeat):
            for mode, (_, runner) in MODES.items():
                url = await backend.fresh()
                try:
                    timings = await runner(backend, url, work)
                    snap = await snapshot(url)
                finally:
                    await backend.discard(url)
                first = first or snap
                _check(mode, timings, snap, first)
                for table, (rows, batch, seconds) in timings.items():
                    old = best.get((table, mode))
                    if old is None or seconds < old.seconds:
                        best[table, mode] = Result(backend.name, table, mode, rows, batch, seconds)
    finally:
        await backend.close()
    return list(best.values())


def table(results: list[Result]) -> str:
    """A markdown table; store rows carry their time per row over the raw one's."""
    by_key = {(r.backend, r.table, r.mode): r for r in results}
    lines = [
        "| backend | table | mode | rows | rows/call | seconds | rows/s | store / raw |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    order = sorted(results, key=lambda r: (r.backend != "sqlite", r.table != "messages"))
    for r in order:
        ratio = ""
        base_mode = MODES[r.mode][0]
        if base_mode:
            raw = by_key[(r.backend, r.table, base_mode)]
            value = (r.seconds / r.rows) / (raw.seconds / raw.rows)
            ratio = f"{value:.2f}x"
            if r.mode == "store bulk":
                ratio += " ok" if value <= TARGET else f" OVER {TARGET:g}x"
        lines.append(
            f"| {r.backend} | {r.table} | {r.mode} | {r.rows:,} | {r.batch:,} "
            f"| {r.seconds:.3f} | {r.rows / r.seconds:,.0f} | {ratio} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="rows per table, bulk modes")
    p.add_argument("--batch", type=int, default=1_000, help="rows per add_messages/record_many")
    p.add_argument("--per-row", type=int, default=5_000, help="rows per table, per-row modes")
    p.add_argument("--sessions", type=int, default=8, help="sessions the messages spread over")
    p.add_argument("--repeat", type=int, default=1, help="runs per mode; the fastest is kept")
    p.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    p.add_argument(
        "--postgres-url", default=os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG), help="admin URL"
    )
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    results: list[Result] = []
    for name in args.backends.split(","):
        if name == "sqlite":
            backend: Backend = Sqlite(Path(tempfile.mkdtemp(prefix="lk_bench_")))
        elif name == "postgresql":
            backend = Postgres(args.postgres_url)
        else:
            raise SystemExit(f"unknown backend {name!r}")
        results += await bench_backend(backend, args)
    print(table(results))


if __name__ == "__main__":
    asyncio.run(main())
