"""Database write benchmark: the stores against a raw driver ``executemany`` of the same rows.

For SQLite (a migrated temp file) and PostgreSQL (a temporary database, created and dropped
here), inserts ``--rows`` messages and ``--rows`` token_usage rows through
``ConversationStore.add_messages`` / ``UsageStore.record_many`` in batches of ``--batch``, and
the same rows (same columns, same values, prebuilt tuples) through aiosqlite / asyncpg
``executemany``, one transaction per batch in both. ``--per-row`` rows also go through
``add_message`` / ``record`` (one call, one transaction per row) for information.
``--prototype`` adds the "proposed bulk" mode: the same Core ``insert(Table)`` with ids made
per batch that the stores run, written out in the bench without the stores around it.

Rows look like real traffic: user and assistant messages alternate (a user message has a user
and a platform id, an assistant message a model, tokens and timing), and so do chat and
embedding usage rows. Each measurement starts from a fresh copy of one migrated template that
holds a workspace, a channel, a user and ``--sessions`` sessions made through IdentityStore.

    .venv/bin/python -m bench.db_write --rows 100000 --repeat 3 --prototype
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import Table, func, insert, select
from sqlalchemy.engine import make_url

from core.db import migrate
from core.db.access import Database
from core.db.conversation import ConversationStore, _message_values
from core.db.engine import SQLITE_PRAGMAS, create_engine
from core.db.identity import IdentityStore
from core.db.models import Base
from core.db.records import MessageInput, UsageInput
from core.db.types import new_id
from core.db.usage import UsageStore

DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
TARGET = 2.0  # store seconds / raw executemany seconds, bulk API
MESSAGE_COLUMNS = (
    "id", "session_id", "user_id", "role", "content", "platform_message_id", "parent_id",
    "prompt_tokens", "completion_tokens", "model", "processing_time_ms", "grounded", "created_at",
)  # fmt: skip
USAGE_COLUMNS = (
    "id", "workspace_id", "user_id", "channel_id", "namespace_id", "message_id", "operation",
    "model", "prompt_tokens", "completion_tokens", "embedding_tokens", "cost", "latency_ms",
    "created_at",
)  # fmt: skip
TABLES = {"messages": MESSAGE_COLUMNS, "token_usage": USAGE_COLUMNS}
BASE_TIME, MS = datetime(2025, 1, 6, 9, 0, tzinfo=UTC), timedelta(milliseconds=1)
CHAT, EMBED = "llama-3.3-70b-versatile", "all-MiniLM-L6-v2"
ANSWER = (
    "The staging database credentials rotate every ninety days. Run the rotation job from the "
    "ops runbook, update the secret in the vault, then restart the workers one at a time so "
    "that no queue is left without a consumer. The runbook lists the order of the services. "
) * 2
Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Ids:
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    user_id: uuid.UUID
    session_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class Workload:
    messages: list[MessageInput]
    usage: list[UsageInput]
    rows: dict[str, list[Row]]  # table -> wire values in TABLES[table] order
    batch: int
    per_row: int


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
    """Alternating user questions and assistant answers, a pair per session in turn."""
    out = []
    for i in range(n):
        session, at = ids.session_ids[(i // 2) % len(ids.session_ids)], BASE_TIME + i * MS
        if i % 2 == 0:
            question = f"How do I rotate the staging credentials for service {i}? Deploy {i}."
            pid = f"{1736150400 + i}.{i % 1000000:06d}"
            out.append(MessageInput(session, "user", question, ids.user_id, pid, created_at=at))
        else:
            tokens: dict[str, Any] = {
                "prompt_tokens": 900 + i % 100,
                "completion_tokens": 180 + i % 50,
            }
            answer = f"{ANSWER}[{i}]"
            extra: dict[str, Any] = {"processing_time_ms": 800 + i % 700, "grounded": i % 3 != 0}
            out.append(
                MessageInput(
                    session, "assistant", answer, model=CHAT, created_at=at, **tokens, **extra
                )
            )
    return out


def make_usage(ids: Ids, n: int) -> list[UsageInput]:
    """Chat calls alternating with embedding calls."""
    out = []
    for i in range(n):
        who: dict[str, Any] = {"user_id": ids.user_id, "channel_id": ids.channel_id}
        if i % 2 == 0:
            tokens: dict[str, Any] = {
                "prompt_tokens": 900 + i % 100,
                "completion_tokens": 180 + i % 50,
            }
            extra: dict[str, Any] = {"cost": Decimal("0.000712"), "latency_ms": 800 + i % 700}
            extra |= {"operation": "chat", "model": CHAT, **tokens}
        else:
            extra = {"operation": "embedding", "model": EMBED, "embedding_tokens": 40 + i % 30}
        out.append(UsageInput(ids.workspace_id, created_at=BASE_TIME + i * MS, **who, **extra))
    return out


def _tuples(items: Sequence[Any], columns: Sequence[str]) -> list[Row]:
    """The rows as plain values: a fresh id, then the input's own fields, None elsewhere."""
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

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="lk_bench_"))
        self._n = 0

    def url(self, name: str) -> str:
        return f"sqlite+aiosqlite:///{self.folder / name}"

    async def create_template(self) -> str:
        await asyncio.to_thread(migrate.upgrade, self.url("template.db"))
        return self.url("template.db")

    async def fresh(self) -> str:
        self._n += 1
        target = self.folder / f"run{self._n}.db"
        await asyncio.to_thread(shutil.copyfile, self.folder / "template.db", target)
        return self.url(target.name)

    async def discard(self, url: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            await asyncio.to_thread(Path(f"{make_url(url).database}{suffix}").unlink, True)

    async def close(self) -> None:
        await asyncio.to_thread(shutil.rmtree, self.folder, True)

    def sql(self, table: str, columns: Sequence[str]) -> str:
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        )

    def wire(self, rows: list[Row]) -> list[Row]:
        return [tuple(_sqlite_value(v) for v in row) for row in rows]

    async def executemany(self, url: str, sql: str, chunks: list[Sequence[Row]]) -> float:
        """Seconds for one ``executemany`` and commit per chunk, on its own connection."""
        async with aiosqlite.connect(make_url(url).database or "", timeout=30) as conn:
            for pragma in SQLITE_PRAGMAS:
                await conn.execute(pragma)
            start = time.perf_counter()
            for chunk in chunks:
                await conn.executemany(sql, chunk)
                await conn.commit()
            return time.perf_counter() - start


class Postgres:
    """A migrated template database; every measurement works on its own copy of it."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        self.base = make_url(url)
        self.template = f"lk_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._made: list[str] = []

    def _dsn(self, database: str | None = None) -> str:
        parsed = self.base.set(drivername="postgresql")
        parsed = parsed if database is None else parsed.set(database=database)
        return parsed.render_as_string(hide_password=False)

    async def _admin(self, sql: str) -> None:
        conn = await asyncpg.connect(self._dsn())
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def _create(self, name: str, template: str = "template0") -> str:
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self._made.append(name)
        return self.base.set(database=name).render_as_string(hide_password=False)

    async def create_template(self) -> str:
        url = await self._create(self.template)
        await asyncio.to_thread(migrate.upgrade, url)
        return url

    async def fresh(self) -> str:
        return await self._create(f"{self.template}_{uuid.uuid4().hex[:6]}", self.template)

    async def discard(self, url: str) -> None:
        name = make_url(url).database or ""
        await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.remove(name)

    async def close(self) -> None:
        for name in reversed(self._made):
            await self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._made.clear()

    def sql(self, table: str, columns: Sequence[str]) -> str:
        marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"

    def wire(self, rows: list[Row]) -> list[Row]:
        return rows  # asyncpg takes UUID, aware datetime, Decimal and bool as they are

    async def executemany(self, url: str, sql: str, chunks: list[Sequence[Row]]) -> float:
        """Seconds for one ``executemany`` in one transaction per chunk, on its own connection."""
        conn = await asyncpg.connect(self._dsn(make_url(url).database))
        try:
            start = time.perf_counter()
            for chunk in chunks:
                async with conn.transaction():
                    await conn.executemany(sql, chunk)
            return time.perf_counter() - start
        finally:
            await conn.close()


Backend = Sqlite | Postgres
Timings = dict[str, tuple[int, int, float]]  # table -> (rows, rows per call, seconds)


# --- measurements ---------------------------------------------------------------------------


async def _clock(fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


@asynccontextmanager
async def _database(url: str) -> AsyncIterator[Database]:
    engine = create_engine(url)
    try:
        async with engine.connect():
            pass  # the pooled connection is open before any clock starts
        yield Database(engine)
    finally:
        await engine.dispose()


async def build_ids(url: str, sessions: int) -> Ids:
    """A workspace, channel, user and ``sessions`` threads, made through IdentityStore."""
    async with _database(url) as database:
        ids = IdentityStore(database)
        ws = await ids.workspace("slack", "TBENCH", name="Bench")
        ch = await ids.channel(ws.id, "CBENCH", name="general")
        user = await ids.user(ws.id, "UBENCH", display_name="Ada")
        made = [
            await ids.session(ws.id, ch.id, f"1736150400.{k:06d}", title=f"thread {k}")
            for k in range(sessions)
        ]
    return Ids(ws.id, ch.id, user.id, tuple(s.id for s in made))


async def raw_bulk(backend: Backend, url: str, work: Workload) -> Timings:
    out: Timings = {}
    for table, columns in TABLES.items():
        rows = work.rows[table]
        chunks = _chunks(rows, work.batch)
        out[table] = (
            len(rows),
            work.batch,
            await backend.executemany(url, backend.sql(table, columns), chunks),
        )
    return out


async def _time(items: Sequence[Any], size: int, call: Callable[[Any], Awaitable[Any]]) -> float:
    """Seconds to hand ``items`` to ``call`` in chunks of ``size`` (the chunks made beforehand)."""
    chunks = _chunks(items, size)

    async def run() -> None:
        for chunk in chunks:
            await call(chunk)

    return await _clock(run)


async def store_bulk(_backend: Backend, url: str, work: Workload) -> Timings:
    async with _database(url) as database:
        conv, usage = ConversationStore(database), UsageStore(database)
        m = await _time(work.messages, work.batch, conv.add_messages)
        u = await _time(work.usage, work.batch, usage.record_many)
    return {
        "messages": (len(work.messages), work.batch, m),
        "token_usage": (len(work.usage), work.batch, u),
    }


async def store_per_row(_backend: Backend, url: str, work: Workload) -> Timings:
    k = work.per_row
    async with _database(url) as database:
        conv, usage = ConversationStore(database), UsageStore(database)
        m = await _time(work.messages[:k], 1, lambda chunk: conv.add_message(chunk[0]))
        u = await _time(work.usage[:k], 1, lambda chunk: usage.record(chunk[0]))
    return {"messages": (k, 1, m), "token_usage": (k, 1, u)}


# --- the "proposed bulk" mode: Core insert(Table), ids per batch, without the stores ---------


def _new_ids(n: int) -> list[uuid.UUID]:
    """``new_id``'s UUIDv7 layout for ``n`` ids: one clock read and one urandom call."""
    head = ((time.time_ns() // 1_000_000) & ((1 << 48) - 1)) << 80 | 0x7 << 76 | 0b10 << 62
    pool = os.urandom(10 * n)
    out = []
    for k in range(0, 10 * n, 10):
        r = int.from_bytes(pool[k : k + 10], "big")
        out.append(uuid.UUID(int=head | ((r >> 64) & 0xFFF) << 64 | (r & ((1 << 62) - 1))))
    return out


_USAGE_FIELDS = attrgetter(*USAGE_COLUMNS[1:])  # the inputs here all carry created_at


async def proto_bulk(_backend: Backend, url: str, work: Workload) -> Timings:
    """add_messages / record_many with Core ``insert(Table)``: every row keeps every key, so
    one executemany per call; the ORM insert drops None keys and splits on each change."""
    messages: Table = Base.metadata.tables["messages"]
    token_usage: Table = Base.metadata.tables["token_usage"]
    async with _database(url) as database:

        async def add_messages(items: Sequence[MessageInput]) -> None:
            ids = _new_ids(len(items))
            rows = [_message_values(m, i) for m, i in zip(items, ids, strict=True)]
            async with database.session() as db, db.begin():
                await db.execute(insert(messages), rows)

        async def record_many(items: Sequence[UsageInput]) -> None:
            ids = _new_ids(len(items))
            rows = [
                dict(zip(USAGE_COLUMNS, (i, *_USAGE_FIELDS(u)), strict=True))
                for u, i in zip(items, ids, strict=True)
            ]
            async with database.session() as db, db.begin():
                await db.execute(insert(token_usage), rows)

        m = await _time(work.messages, work.batch, add_messages)
        u = await _time(work.usage, work.batch, record_many)
    return {
        "messages": (len(work.messages), work.batch, m),
        "token_usage": (len(work.usage), work.batch, u),
    }


# --- orchestration --------------------------------------------------------------------------

Mode = Callable[[Backend, str, Workload], Awaitable[Timings]]
MODES: dict[str, Mode] = {
    "raw executemany": raw_bulk,
    "store bulk": store_bulk,
    "store per row": store_per_row,
    "proposed bulk": proto_bulk,
}
COMPARED = ("store bulk", "proposed bulk")  # against raw executemany, target TARGET


async def snapshot(url: str) -> tuple[Any, ...]:
    """Per table: the row count and the first two rows without their ids, read through SA."""
    out: list[Any] = []
    async with _database(url) as database, database.session() as db:
        for table in TABLES:
            t = Base.metadata.tables[table]
            cols = [c for c in t.c if c.name != "id"]
            rows = (await db.execute(select(*cols).order_by(t.c.created_at).limit(2))).all()
            count = (await db.execute(select(func.count()).select_from(t))).scalar_one()
            out.append((count, [tuple(r) for r in rows]))
    return tuple(out)


def _check(mode: str, timings: Timings, snap: tuple[Any, ...], first: tuple[Any, ...]) -> None:
    for (table, (rows, _, _)), (count, values), (_, expected) in zip(
        timings.items(), snap, first, strict=True
    ):
        if count != rows:
            raise RuntimeError(f"{mode}: {count} rows in {table}, expected {rows}")
        if values != expected:
            raise RuntimeError(f"{mode}: {table} holds other values than the first mode wrote")


async def bench_backend(backend: Backend, args: argparse.Namespace) -> list[Result]:
    """Every mode ``--repeat`` times on fresh copies of one template; the fastest run counts."""
    best: dict[tuple[str, str], Result] = {}
    try:
        ids = await build_ids(await backend.create_template(), args.sessions)
        messages, usage = make_messages(ids, args.rows), make_usage(ids, args.rows)
        rows = {
            "messages": backend.wire(_tuples(messages, MESSAGE_COLUMNS)),
            "token_usage": backend.wire(_tuples(usage, USAGE_COLUMNS)),
        }
        work = Workload(messages, usage, rows, args.batch, min(args.per_row, args.rows))
        modes = [m for m in MODES if args.prototype or m != "proposed bulk"]
        first: tuple[Any, ...] | None = None
        for _ in range(args.repeat):
            for mode in modes:
                url = await backend.fresh()
                try:
                    timings = await MODES[mode](backend, url, work)
                    snap = await snapshot(url)
                finally:
                    await backend.discard(url)
                first = first or snap
                _check(mode, timings, snap, first)
                for table, (n, batch, seconds) in timings.items():
                    old = best.get((table, mode))
                    if old is None or seconds < old.seconds:
                        best[table, mode] = Result(backend.name, table, mode, n, batch, seconds)
    finally:
        await backend.close()
    return sorted(best.values(), key=lambda r: (r.table, list(MODES).index(r.mode)))


def table(results: list[Result]) -> str:
    """A markdown table; bulk store rows carry their time per row over raw executemany's."""
    raw = {(r.backend, r.table): r for r in results if r.mode == "raw executemany"}
    lines = [
        "| backend | table | mode | rows | rows/call | seconds | rows/s | vs raw executemany |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = ""
        if r.mode in COMPARED:
            base = raw[r.backend, r.table]
            value = (r.seconds / r.rows) / (base.seconds / base.rows)
            ratio = f"{value:.2f}x " + ("(ok)" if value <= TARGET else f"(over {TARGET:g}x)")
        lines.append(
            f"| {r.backend} | {r.table} | {r.mode} | {r.rows:,} | {r.batch:,} "
            f"| {r.seconds:.3f} | {r.rows / r.seconds:,.0f} | {ratio} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=100_000, help="rows per table, bulk modes")
    p.add_argument("--batch", type=int, default=1_000, help="rows per add_messages/record_many")
    p.add_argument("--per-row", type=int, default=5_000, help="rows per table, per-row mode")
    p.add_argument("--sessions", type=int, default=8, help="sessions the messages spread over")
    p.add_argument("--repeat", type=int, default=1, help="runs per mode; the fastest counts")
    p.add_argument("--prototype", action="store_true", help="also time the proposed bulk path")
    p.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    pg = os.environ.get("TEST_POSTGRES_URL", DEFAULT_PG)
    p.add_argument("--postgres-url", default=pg, help="a PostgreSQL URL allowed to CREATE DATABASE")
    return p.parse_args(argv)


async def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    results: list[Result] = []
    for name in args.backends.split(","):
        if name not in ("sqlite", "postgresql"):
            raise SystemExit(f"unknown backend {name!r}; use sqlite and/or postgresql")
        backend: Backend = Sqlite() if name == "sqlite" else Postgres(args.postgres_url)
        results += await bench_backend(backend, args)
    print(f"rows={args.rows:,} batch={args.batch:,} per-row={args.per_row:,} repeat={args.repeat}")
    print(table(results))


if __name__ == "__main__":
    asyncio.run(main())
