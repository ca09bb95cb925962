"""Quota boundaries with an injectable clock, counted from SQL on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.db.identity import IdentityStore
from core.db.records import UsageInput
from core.db.usage import UsageStore
from core.errors import QuotaExceeded
from core.quota import QuotaService

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


async def _setup(sessions, clock):
    ids = IdentityStore(sessions)
    ws = await ids.workspace("slack", "Tq")
    user = await ids.user(ws.id, "Uq")
    other = await ids.user(ws.id, "Uother")
    usage = UsageStore(sessions)
    await usage.set_workspace_limits(ws.id, user_daily_tokens=100, workspace_daily_tokens=250)
    return usage, QuotaService(usage, clock=clock), ws, user, other


async def test_user_limit_boundary_and_reset_at_midnight_utc(sessions) -> None:
    now = [NOON]
    usage, quota, ws, user, _ = await _setup(sessions, lambda: now[0])
    await usage.record(
        UsageInput(ws.id, "chat", user_id=user.id, prompt_tokens=99, created_at=NOON)
    )
    await quota.check(ws.id, user.id)  # 99 of 100: allowed
    await usage.record(
        UsageInput(ws.id, "embedding", user_id=user.id, embedding_tokens=1, created_at=NOON)
    )
    with pytest.raises(QuotaExceeded) as err:
        await quota.check(ws.id, user.id)  # 100 of 100: refused
    assert "100 of your 100 tokens" in err.value.user_message
    assert "00:00 UTC (in 12 h 0 min)" in err.value.user_message
    now[0] = NOON.replace(hour=23, minute=59, second=59)
    with pytest.raises(QuotaExceeded):
        await quota.check(ws.id, user.id)
    now[0] = NOON + timedelta(hours=12)  # 00:00 the next day: a fresh budget
    await quota.check(ws.id, user.id)


async def test_workspace_limit_counts_every_user(sessions) -> None:
    usage, quota, ws, user, other = await _setup(sessions, lambda: NOON)
    await usage.record(
        UsageInput(ws.id, "chat", user_id=other.id, prompt_tokens=90, created_at=NOON)
    )
    await usage.record(UsageInput(ws.id, "chat", user_id=None, prompt_tokens=159, created_at=NOON))
    await quota.check(ws.id, user.id)  # 249 of 250
    await usage.record(UsageInput(ws.id, "chat", user_id=None, prompt_tokens=1, created_at=NOON))
    with pytest.raises(QuotaExceeded) as err:
        await quota.check(ws.id, user.id)
    assert "This workspace has used 250 of its 250" in err.value.user_message


async def test_yesterday_does_not_count(sessions) -> None:
    usage, quota, ws, user, _ = await _setup(sessions, lambda: NOON)
    midnight = NOON.replace(hour=0)
    await usage.record(
        UsageInput(
            ws.id,
            "chat",
            user_id=user.id,
            prompt_tokens=500,
            created_at=midnight - timedelta(microseconds=1),
        )
    )
    await quota.check(ws.id, user.id)
    await usage.record(
        UsageInput(ws.id, "chat", user_id=user.id, prompt_tokens=100, created_at=midnight)
    )
    with pytest.raises(QuotaExceeded):
        await quota.check(ws.id, user.id)


async def test_checks_that_arrive_together_each_get_their_own_counts(sessions) -> None:
    """A burst of checks shares one statement per workspace: every user still gets their own
    tokens, a check without a user gets none, and another workspace's usage never counts."""
    usage, quota, ws, user, other = await _setup(sessions, lambda: NOON)
    elsewhere = await IdentityStore(sessions).workspace("slack", "Tq-other")
    for ws_id, user_id, tokens in (
        (ws.id, user.id, 100),
        (ws.id, other.id, 40),
        (ws.id, None, 7),
        (elsewhere.id, None, 1000),
    ):
        await usage.record(
            UsageInput(ws_id, "chat", user_id=user_id, prompt_tokens=tokens, created_at=NOON)
        )
    midnight = NOON.replace(hour=0)
    asks = [(ws.id, user.id), (ws.id, other.id), (ws.id, None), (elsewhere.id, None)]
    states = await asyncio.gather(*(usage.quota_state(w, u, since=midnight) for w, u in asks))
    assert [state[1:] for state in states] == [(100, 147), (40, 147), (0, 147), (0, 1000)]
    outcomes = await asyncio.gather(
        quota.check(ws.id, user.id), quota.check(ws.id, other.id), return_exceptions=True
    )
    assert isinstance(outcomes[0], QuotaExceeded)
    assert "100 of your 100 tokens" in outcomes[0].user_message
    assert not isinstance(outcomes[1], BaseException)
