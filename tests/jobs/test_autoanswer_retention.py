"""Retention of autoanswer decisions on SQLite and PostgreSQL, with a fixed clock: they go
with the messages of their channel (its namespace override included), an answered one not
while the rate window that counts it is open."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from core.db.autoanswer import AutoAnswerStore
from core.db.knowledge import KnowledgeStore
from core.db.models import AutoAnswerDecision
from core.jobs.retention import Retention, RetentionPolicy
from tests.jobs.data import NOW, world

DAY = timedelta(days=1)


def clock():
    return NOW


async def _decide(store: AutoAnswerStore, channel, age: timedelta, *, answered: bool) -> tuple:
    """A decision ``age`` old (a question left alone keeps its text and thread)."""
    await store.record(
        channel,
        answered=answered,
        probability=0.5,
        reason="confident" if answered else "unsure",
        at=NOW - age,
        question=None if answered else "What is the wifi password?",
        thread_key=None if answered else "1718000000.000100",
    )
    return channel, age, answered


async def _left(database) -> set[tuple]:
    """The decisions still stored, as ``_decide`` names them."""
    row = AutoAnswerDecision
    async with database.session() as db:
        found = await db.execute(select(row.channel_id, row.created_at, row.answered))
        return {(channel, NOW - at, answered) for channel, at, answered in found.all()}


async def test_decisions_go_with_the_messages_of_their_channel(database) -> None:
    w = await world(database)
    store = AutoAnswerStore(database)
    knowledge = KnowledgeStore(database)
    hr = await knowledge.ensure_namespace(w.workspace, "hr")
    await knowledge.update_namespace_config(hr.id, {"retention_days": 7})
    short = (await w.ids.channel(w.workspace, "C-hr")).id
    await knowledge.bind(short, hr.id)
    kept = {
        await _decide(store, w.channel, 89 * DAY, answered=False),
        await _decide(store, w.channel, 89 * DAY, answered=True),
        await _decide(store, short, 6 * DAY, answered=False),
        await _decide(store, short, 6 * DAY, answered=True),
    }
    gone = {
        await _decide(store, w.channel, 91 * DAY, answered=False),
        await _decide(store, w.channel, 91 * DAY, answered=True),
        await _decide(store, short, 8 * DAY, answered=False),
        await _decide(store, short, 8 * DAY, answered=True),
    }

    report = await Retention(database, clock=clock).run()

    assert report.auto_answers == 4
    assert await _left(database) == kept, gone
    # a second run finds nothing more
    assert (await Retention(database, clock=clock).run()).auto_answers == 0


async def test_an_answered_decision_stays_while_the_rate_window_counts_it(database) -> None:
    w = await world(database)
    store = AutoAnswerStore(database)
    counted = await _decide(store, w.channel, timedelta(minutes=30), answered=True)
    past = await _decide(store, w.channel, timedelta(hours=2), answered=True)
    question = await _decide(store, w.channel, timedelta(minutes=30), answered=False)
    policy = RetentionPolicy(message_days=0, auto_answer_window=timedelta(hours=1))

    removed = await Retention(database, policy=policy, clock=clock).purge_auto_answers()

    assert removed == 2
    assert await _left(database) == {counted}, (past, question)
    # what is left is what the rate limit still counts
    assert await store.answered_since(w.channel, NOW - timedelta(hours=1)) == 1


async def test_batches_delete_every_old_decision(database) -> None:
    w = await world(database)
    store = AutoAnswerStore(database)
    for _ in range(7):
        await _decide(store, w.channel, 100 * DAY, answered=False)
    young = await _decide(store, w.channel, DAY, answered=False)
    policy = RetentionPolicy(batch_size=3, pause_ratio=0.0)

    removed = await Retention(database, policy=policy, clock=clock).purge_auto_answers()

    assert removed == 7
    assert await _left(database) == {young}


def test_the_bot_keeps_answered_decisions_as_long_as_its_rate_window() -> None:
    from bot.container import retention_policy
    from bot.settings import Settings

    def window(rate: str, *, sqlite: bool = False) -> timedelta:
        settings = Settings(_env_file=None, autoanswer_rate_limit=rate)  # type: ignore[call-arg]
        return retention_policy(settings, sqlite=sqlite).auto_answer_window

    assert window("5/10m") == DAY  # a short window: the one-day floor
    assert window("5/48h") == 2 * DAY  # a longer one: kept while it counts
    assert window("off") == DAY
    sqlite = retention_policy(Settings(_env_file=None), sqlite=True)  # type: ignore[call-arg]
    assert (sqlite.batch_size, sqlite.pause_ratio) == (500, 2.0)
