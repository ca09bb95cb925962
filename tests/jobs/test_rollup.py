"""Daily rollups: idempotent, equal to the raw sums, split on UTC midnight, backfilled."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select

from core.db.models import DailyUsage
from core.db.usage import UsageStore
from core.jobs.clock import day_start
from core.jobs.rollup import UsageRollup
from tests.jobs.data import NOW, answers, raw_usage, usage, world

KEY = ("workspace_id", "user_id", "channel_id", "namespace_id", "model", "operation")
SUMS = ("requests", "calls", "prompt_tokens", "completion_tokens", "embedding_tokens", "cost")


async def _daily(database, day=None) -> dict:
    stmt = select(DailyUsage)
    if day is not None:
        stmt = stmt.where(DailyUsage.day == day)
    async with database.session() as db:
        rows = (await db.execute(stmt)).scalars().all()
    out = {}
    for r in rows:
        key = (r.day, *(getattr(r, k) for k in KEY))
        assert key not in out, "one row per key"
        out[key] = tuple(getattr(r, s) for s in SUMS)
    return out


def _expected(raw) -> dict:
    sums = defaultdict(lambda: [0, 0, 0, 0, 0, Decimal(0)])
    for r in raw:
        key = (r.created_at.date(), r.workspace_id, r.user_id, r.channel_id, r.namespace_id)
        acc = sums[(*key, r.model or "", r.operation)]
        acc[0] += r.operation == "embedding" and r.message_id is not None  # answered question
        acc[1] += 1
        acc[2] += r.prompt_tokens
        acc[3] += r.completion_tokens
        acc[4] += r.embedding_tokens
        acc[5] += r.cost
    return {k: tuple(v) for k, v in sums.items()}


async def _seed(database, w, days: list[date], n: int = 300) -> None:
    rng = random.Random(7)
    other = await w.ids.user(w.workspace, "U2")
    messages = await answers(database, w, n)
    items = []
    for i in range(n):
        day = days[i % len(days)]
        when = day_start(day) + timedelta(seconds=rng.randrange(86_400))
        op = rng.choice(["chat", "chat", "condense", "embedding", "ingest"])
        items.append(
            usage(
                w,
                when,
                operation=op,
                message_id=messages[i] if op != "ingest" and rng.random() < 0.8 else None,
                model=rng.choice(["llama", "mixtral", None]),
                user_id=rng.choice([w.user, other.id, None]),
                channel_id=rng.choice([w.channel, None]),
                prompt_tokens=rng.randrange(1000) if op != "embedding" else 0,
                completion_tokens=rng.randrange(300) if op == "chat" else 0,
                embedding_tokens=rng.randrange(500) if op == "embedding" else 0,
                cost=Decimal(rng.randrange(1, 10_000)) / Decimal(1_000_000),
            )
        )
    await UsageStore(database).record_many(items)


async def test_rollup_equals_the_raw_sum_and_is_idempotent(database) -> None:
    w = await world(database)
    days = [date(2025, 6, 12), date(2025, 6, 13), date(2025, 6, 14)]
    await _seed(database, w, days)
    rollup = UsageRollup(database, clock=lambda: NOW)
    for day in days:
        await rollup.rollup_day(day)
    first = await _daily(database)
    assert first == _expected(await raw_usage(database))
    assert any(k[2] is None for k in first) and any(k[3] is None for k in first)
    assert any(k[5] == "" for k in first)  # a NULL model is the '' key part
    assert sum(v[0] for v in first.values()) > 0  # answered questions counted as requests
    assert sum(v[1] for v in first.values()) == 300  # every row a call of its operation
    for day in days:  # run every day again: the same rows, nothing doubled
        await rollup.rollup_day(day)
    assert await _daily(database) == first
    assert await rollup.rollup_day(date(2025, 6, 1)) == 0  # an empty day writes nothing


async def test_a_day_ends_at_midnight_utc(database) -> None:
    w = await world(database)
    midnight = day_start(date(2025, 6, 14))
    await UsageStore(database).record_many(
        [
            usage(w, midnight - timedelta(microseconds=1), prompt_tokens=1),
            usage(w, midnight, prompt_tokens=10),
            usage(w, midnight + timedelta(days=1) - timedelta(microseconds=1), prompt_tokens=100),
        ]
    )
    rollup = UsageRollup(database, clock=lambda: NOW)
    await rollup.rollup_day(date(2025, 6, 13))
    await rollup.rollup_day(date(2025, 6, 14))
    by_day = {k[0]: v[2] for k, v in (await _daily(database)).items()}
    assert by_day == {date(2025, 6, 13): 1, date(2025, 6, 14): 110}


async def test_backfill_rolls_every_missed_day_then_nothing(database) -> None:
    w = await world(database)
    today = NOW.date()
    days = [today - timedelta(days=d) for d in range(6, 0, -1)]
    await _seed(database, w, [*days, today], n=140)
    rollup = UsageRollup(database, clock=lambda: NOW)
    assert await rollup.pending_days() == days

    done = await rollup.backfill()

    assert done["days"] == 6
    rolled = await _daily(database)
    assert {k[0] for k in rolled} == set(days)  # today stays raw until tomorrow
    expected = {k: v for k, v in _expected(await raw_usage(database)).items() if k[0] != today}
    assert rolled == expected
    assert await rollup.pending_days() == []
    # the next day's run rolls yesterday (today, by then) and nothing else
    tomorrow = UsageRollup(database, clock=lambda: NOW + timedelta(days=1))
    assert (await tomorrow.daily())["days"] == 1
    assert await _daily(database) == _expected(await raw_usage(database))
