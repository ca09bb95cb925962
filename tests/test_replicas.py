"""Two `lorekeeper run --slack` replicas for real, on one PostgreSQL database and one Milvus
server over gRPC (milvus-lite in server mode standing in for Milvus standalone), against one
fake Slack and one fake Groq: what docs/scale-out.md claims, measured."""

from __future__ import annotations

import asyncio
import re
import signal
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import text

from core.db.engine import create_engine
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.fakes.slack_server import BOT_USER, FakeSlack
from tests.replica_harness import (
    Replica,
    milvus_server,
    replica_env,
    replicas,
    under_way,
    until,
)
from tests.scenarios.suite import HANDBOOK
from tests.slack.driver import visible_text

pytestmark = pytest.mark.slow

JOB_INTERVAL = 5  # seconds between the scheduled runs of every job, in both replicas
JOBS = ("retention", "rollup", "reconcile", "recover-ingestion")
_RAN = re.compile(r"^job (?P<job>[\w-]+): .* in (?P<seconds>[\d.]+)s$")
_SKIPPED = re.compile(r"^job (?P<job>[\w-]+) skipped: ")


async def test_two_replicas_share_postgres_and_milvus(postgres_databases, tmp_path: Path) -> None:
    name, url = await postgres_databases.create()
    try:
        async with (
            FakeGroq(responder=relevant_quoting_responder) as groq,
            FakeSlack() as slack,
            aiohttp.ClientSession() as http,
        ):
            with milvus_server(tmp_path) as milvus_uri:
                env = replica_env(
                    url,
                    milvus_uri,
                    slack,
                    groq,
                    JOB_INTERVAL_SECONDS=str(JOB_INTERVAL),
                    EVENT_LEASE_SECONDS="5",
                )
                async with replicas(2, env, tmp_path, slack=slack, http=http) as (a, b):
                    await _indexed_by_one_answered_by_the_other(a, b, slack)
                    await _one_event_to_both_is_answered_once(a, b, slack)
                    await _each_scheduled_job_runs_once(a, b)
                    await _a_retry_after_a_killed_replica_is_answered(a, b, slack, groq, url)
                    await _sigterm_mid_answer_still_answers(b, slack, groq)
    finally:
        await postgres_databases.drop(name)


async def _indexed_by_one_answered_by_the_other(a: Replica, b: Replica, slack: FakeSlack) -> None:
    shared = a.driver.message_event(
        "", user="U1", channel="C1", files=[slack.add_file("handbook.md", HANDBOOK)]
    )
    shared["text"] = f"<@{BOT_USER}>"
    assert await a.driver.send_event(shared) == 200
    await until(lambda: _said(slack, shared["ts"], "Indexed handbook.md"), what="indexing")
    answer = await _ask(b, slack, "How many days of paid vacation?")
    assert "25 days" in visible_text(answer)


async def _one_event_to_both_is_answered_once(a: Replica, b: Replica, slack: FakeSlack) -> None:
    """Slack delivers an event to one replica and its retry to the other: one answer."""
    event = a.driver.message_event(
        f"<@{BOT_USER}> How are travel expenses reimbursed?",
        user="U2",
        channel="C1",
        kind="app_mention",
    )
    key = f"{slack.team}:C1:{event['ts']}"
    sent = await asyncio.gather(
        a.driver.send_event(event, event_id="EvBOTH1"),
        b.driver.send_event(event, event_id="EvBOTH1", retry=1),
    )
    assert sent == [200, 200]

    async def settled() -> bool:
        duplicates = a.said("duplicate event ignored", event_id=key)
        duplicates += b.said("duplicate event ignored", event_id=key)
        return bool(duplicates) and await _answered(slack, event["ts"]) is not None

    await until(settled, what="one answer and one duplicate")
    answered = a.said("answered", event_id=key) + b.said("answered", event_id=key)
    assert len(answered) == 1
    finals = [m for m in slack.thread("C1", event["ts"]) if _is_answer(m)]
    assert len(finals) == 1 and "14 days" in visible_text(finals[0])


async def _each_scheduled_job_runs_once(a: Replica, b: Replica) -> None:
    """Both replicas fire every job at the same instants; at each, one runs it and the other
    finds it taken (wait until every job shows both in one instant, then check them all)."""

    def by_instant() -> dict[tuple[str, int], dict[str, list[str]]]:
        seen: dict[tuple[str, int], dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for replica in (a, b):
            for record in replica.records():
                outcome = _job_outcome(record)
                if outcome is not None:
                    job, instant, status = outcome
                    seen[(job, instant)][status].append(replica.name)
        return seen

    def both(runs: dict[str, list[str]]) -> bool:
        return len(runs["ok"]) + len(runs["skipped"]) + len(runs["failed"]) >= 2

    async def both_fired_every_job() -> bool:
        seen = by_instant()
        return all(any(j == job and both(runs) for (j, _), runs in seen.items()) for job in JOBS)

    await until(both_fired_every_job, seconds=300, what="every job fired in both replicas")
    for (job, instant), runs in by_instant().items():
        assert len(runs["ok"]) <= 1 and not runs["failed"], (job, instant, dict(runs))
        if both(runs):
            assert len(runs["ok"]) == len(runs["skipped"]) == 1, (job, instant, dict(runs))


async def _a_retry_after_a_killed_replica_is_answered(
    a: Replica, b: Replica, slack: FakeSlack, groq: FakeGroq, database_url: str
) -> None:
    """A replica dies (SIGKILL) mid-answer; Slack's retry, once the claim's lease ran out, is
    answered by the other."""
    groq.latency = 30.0
    event = a.driver.message_event(
        f"<@{BOT_USER}> When do unused vacation days expire?",
        user="U3",
        channel="C1",
        kind="app_mention",
    )
    key = f"{slack.team}:C1:{event['ts']}"
    assert await a.driver.send_event(event) == 200
    await until(lambda: under_way(slack, "C1", event["ts"]), what="the answer under way")
    a.proc.kill()
    await a.proc.wait()
    groq.latency = 0.0
    expires = await _lease_end(database_url, key)
    await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    assert await b.driver.send_event(event, retry=1) == 200

    async def decided() -> bool:
        return bool(b.said("answered", event_id=key) or b.said("duplicate", event_id=key))

    await until(decided, what=f"{b.name} to take the retry or drop it")
    assert b.said("answered", event_id=key), "the retry was dropped as a duplicate"
    answer = await until(lambda: _answered(slack, event["ts"]), what="the taken-over answer")
    assert "March 31" in visible_text(answer)


async def _sigterm_mid_answer_still_answers(b: Replica, slack: FakeSlack, groq: FakeGroq) -> None:
    groq.latency = 3.0
    answer_ts = await _start_question(b, "How are travel expenses reimbursed?", user="U4")
    await until(lambda: under_way(slack, "C1", answer_ts), what="the answer under way")
    b.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(b.proc.wait(), timeout=90) == 0, b.log.read_text()[-3000:]
    final = await _answered(slack, answer_ts)
    assert final is not None and "14 days" in visible_text(final)


async def _lease_end(database_url: str, key: str) -> datetime:
    """When the uncompleted claim on ``key`` runs out."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT lease_expires_at, completed_at FROM processed_events "
                        "WHERE platform = 'slack' AND event_id = :key"
                    ),
                    {"key": key},
                )
            ).one()
    finally:
        await engine.dispose()
    assert row.completed_at is None  # the killed replica never finished it
    expires: datetime = row.lease_expires_at
    return expires if expires.tzinfo else expires.replace(tzinfo=UTC)


def _job_outcome(record: dict[str, Any]) -> tuple[str, int, str] | None:
    """(job, the instant it was fired for, ok/skipped/failed) of a scheduler log record."""
    message = record.get("message", "")
    at = datetime.fromisoformat(record["ts"]).timestamp()
    if ran := _RAN.match(message):
        started = at - float(ran["seconds"])
        return ran["job"], int(started // JOB_INTERVAL), "ok"
    if skipped := _SKIPPED.match(message):
        return skipped["job"], int(at // JOB_INTERVAL), "skipped"
    if message.startswith("job ") and " failed after " in message:
        return message.split()[1], int(at // JOB_INTERVAL), "failed"
    return None


async def _start_question(replica: Replica, question: str, *, user: str) -> str:
    event = replica.driver.message_event(
        f"<@{BOT_USER}> {question}", user=user, channel="C1", kind="app_mention"
    )
    assert await replica.driver.send_event(event) == 200
    return str(event["ts"])


async def _ask(replica: Replica, slack: FakeSlack, question: str) -> dict[str, Any]:
    ts = await _start_question(replica, question, user="U1")
    return await until(lambda: _answered(slack, ts), what=f"an answer from {replica.name}")


def _is_answer(message: dict[str, Any]) -> bool:
    return any(b.get("type") == "actions" for b in message.get("blocks") or [])


async def _said(slack: FakeSlack, ts: str, words: str) -> bool:
    return any(words in visible_text(m) for m in slack.thread("C1", ts))


async def _answered(slack: FakeSlack, ts: str) -> dict[str, Any] | None:
    done = [m for m in slack.thread("C1", ts) if _is_answer(m)]
    return done[-1] if done else None
