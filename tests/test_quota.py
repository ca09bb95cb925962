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


async def _setup(database, clock):
    ids = IdentityStore(database)
    ws = await ids.workspace("slack", "Tq")
    user = await ids.user(ws.id, "Uq")
    other = await ids.user(ws.id, "Uother")
    usage = UsageStore(database)
    await usage.set_workspace_limits(ws.id, user_daily_tokens=100, workspace_daily_tokens=250)
    return usage, QuotaService(usage, clock=clock), ws, user, other


async def test_user_limit_boundary_and_reset_at_midnight_utc(database) -> None:
    now = [NOON]
    usage, quota, ws, user, _ = await _setup(database, lambda: now[0])
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


async def test_workspace_limit_counts_every_user(database) -> None:
    usage, quota, ws, user, other = await _setup(database, lambda: NOON)
    await usage.record(
        UsageInput(ws.id, "chat", user_id=other.id, prompt_tokens=90, created_at=NOON)
    )
    await usage.record(UsageInput(ws.id, "chat", user_id=None, prompt_tokens=159, created_at=NOON))
    await quota.check(ws.id, user.id)  # 249 of 250
    await usage.record(UsageInput(ws.id, "chat", user_id=None, prompt_tokens=1, created_at=NOON))
    with pytest.raises(QuotaExceeded) as err:
        await quota.check(ws.id, user.id)
    assert "This workspace has used 250 of its 250" in err.value.user_message


async def test_yesterday_does_not_count(database) -> None:
    usage, quota, ws, user, _ = await _setup(database, lambda: NOON)
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


async def test_checks_that_arrive_together_each_get_their_own_counts(database) -> None:
    """A burst of checks shares one statement per workspace: every user still gets their own
    tokens, a check without a user gets none, and another workspace's usage never counts."""
    usage, quota, ws, user, other = await _setup(database, lambda: NOON)
    elsewhere = await IdentityStore(database).workspace("slack", "Tq-other")
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


async def test_ingest_tokens_never_count_against_questions(database) -> None:
    """One member's uploads draw on the upload allowance, not on everyone's question quota."""
    now = [NOON]
    usage, quota, ws, user, other = await _setup(database, lambda: now[0])
    await usage.set_workspace_limits(
        ws.id, user_daily_upload_tokens=1_000, workspace_daily_upload_tokens=1_500
    )
    await usage.record(
        UsageInput(ws.id, "ingest", user_id=user.id, embedding_tokens=900, created_at=NOON)
    )
    await quota.check(ws.id, other.id)  # questions: 0 of 250 used, whatever was uploaded
    await quota.check(ws.id, user.id)
    await quota.check_upload(ws.id, user.id, 100, "a.md")  # 900 + 100 = 1,000: allowed
    with pytest.raises(QuotaExceeded) as err:
        await quota.check_upload(ws.id, user.id, 101, "a.md")
    assert "I can't index a.md" in err.value.user_message
    assert "questions are not affected" in err.value.user_message
    await quota.check_upload(ws.id, other.id, 600, "b.md")  # workspace: 900 + 600 = 1,500
    with pytest.raises(QuotaExceeded) as err:
        await quota.check_upload(ws.id, other.id, 601, "b.md")
    assert "This workspace has" not in err.value.user_message  # lower-cased in the sentence
    assert "this workspace has 600 of 1,500 upload tokens left" in err.value.user_message
    now[0] = NOON + timedelta(days=1)  # a new day
    await quota.check_upload(ws.id, user.id, 1_000, "a.md")


async def test_question_rate_limit_counts_stored_questions(
    database_url, tmp_path, embedder
) -> None:
    """Three per hour: the fourth is refused with when to retry, by this process and by a
    second one on the same database (the count is in SQL); another user is not affected."""
    from tests.harness import BotHarness

    bots = [
        await BotHarness.start(
            database_url, tmp_path / str(i), embedder=embedder, QUESTION_RATE_LIMIT="3/1h"
        )
        for i in range(2)
    ]
    try:
        for n in range(3):
            answer = await bots[n % 2].say("Where is the office?", thread=f"T{n}")
            assert answer.mode != "refused", answer.text
        for bot in bots:
            refused = await bot.say("Where is the office?", thread="T9")
            assert refused.mode == "refused"
            assert refused.text.startswith("You've asked 3 questions in the last 1 h")
            assert refused.text.endswith(("try again in 59 min.", "try again in 1 h."))
        assert (await bots[0].say("Where is the office?", user="U2")).mode != "refused"
    finally:
        for bot in bots:
            await bot.close()


async def test_an_upload_over_the_allowance_is_refused_before_embedding(
    database_url, tmp_path, embedder
) -> None:
    """Through the product: an admin sets a small upload allowance, a member's big file is
    refused with the reason and stored as failed, nothing is embedded, and questions (the
    member's and everyone's) go on."""
    from sqlalchemy import select

    from core.db.models import Document, TokenUsage, Upload
    from tests.harness import BotHarness

    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        set_ = await bot.admin("quota set user-uploads 200")
        assert set_.ok and "200" in set_.text, set_.text
        small = await bot.upload("small.md", b"The office opens at 8 am.\n", user="U-ada")
        assert small.ok
        big = b"\n\n".join(b"Paragraph %d about the office and its rules." % i for i in range(80))
        refused = await bot.upload("big.md", big, user="U-ada")
        assert not refused.ok
        assert refused.message.startswith("I can't index big.md: it needs about ")
        assert "upload tokens left today" in refused.message
        async with bot.container.database.session() as db:
            status = dict((await db.execute(select(Document.title, Document.status))).all())
            uploads = dict(
                (await db.execute(select(Upload.original_filename, Upload.status))).all()
            )
            ingested = (
                (
                    await db.execute(
                        select(TokenUsage.embedding_tokens).where(TokenUsage.operation == "ingest")
                    )
                )
                .scalars()
                .all()
            )
        assert status == {"small.md": "indexed", "big.md": "failed"}
        assert uploads["big.md"] == "failed"
        assert len(ingested) == 1  # only the small file was embedded and billed
        for user in ("U-ada", "U-eve"):
            assert (await bot.say("When does the office open?", user=user)).mode != "refused"
        assert "upload tokens" in (await bot.admin("quota show", is_admin=False)).text
    finally:
        await bot.close()
