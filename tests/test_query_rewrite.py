"""Query rewriting on the Groq path, end to end on the real core (SQLite and PostgreSQL,
milvus-lite, real embeddings) with the real groq SDK against the fake Groq server: a question
the evidence gate refuses in its own words is rewritten once in the documents' words,
searched again and answered when the gate then accepts it; anything else costs nothing."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select

from core.db.models import TokenUsage
from tests.fakes.groq_server import FakeGroq, count_tokens
from tests.harness import BotHarness

EXPENSES = b"""# Expenses

Northwind reimburses reasonable costs you incur while working. Submit every claim in Expensify
within 30 days of the purchase, with a photo of the receipt.

## Meals

When you travel for work you receive a meal per diem of 60 EUR per day, or 45 EUR per day
inside the home country. The per diem covers breakfast, lunch, dinner and snacks; you do not
need receipts for it. Alcohol is never reimbursed.

## Mileage

Using your own car for a work trip is paid at 0.30 EUR per kilometre. Log the start and end
addresses of every trip in the claim.

## Approval and payment

Your manager approves claims weekly. Approved claims are paid with the next monthly salary
run, which happens on the 25th of each month.
"""
ROTATION = b"""# On-call rotation

The platform team runs a weekly on-call rotation. A shift starts on Monday at 10:00 and ends
the following Monday at 10:00. The schedule lives in PagerDuty.

## Responding to a page

When PagerDuty pages you, acknowledge the alert within 5 minutes. If nobody acknowledges
within 5 minutes, the page escalates to the secondary on-call, and after 15 minutes to the
engineering manager.

## Compensation

Every on-call week is paid with a flat allowance of 300 EUR.
"""

# asked the way people talk: no sentence shares its words or comes near it in meaning, so
# the gate refuses what they find
PARAPHRASE = "Can I put booze on the company tab?"
# what a model asked for the handbook's words would reply
REWRITE = "Is alcohol reimbursed? alcohol expense reimbursement"
LITERAL = "How much is mileage paid per kilometre?"
ANSWER = "No: alcohol is never reimbursed [1]."
REWRITE_INSTRUCTION = "search query for the team's handbook"
BUDGET = 1.0  # GROQ_TIMEOUT in the outage tests: the budget of all of a question's LLM work
SLACK = 1.5  # as tests/test_answers.py: room for a loaded 2-core machine


class Model:
    """The fake's responder: a rewrite from ``rewrites`` (else the question unchanged) when
    asked for a search query, ``ANSWER`` when asked to answer."""

    def __init__(self) -> None:
        self.rewrites: dict[str, str] = {}

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        if not _is_rewrite(messages):
            return ANSWER
        match = re.search(r"^Question: (.*)$", messages[-1]["content"], re.M)
        asked = match.group(1) if match else ""
        return self.rewrites.get(asked, asked)


def _is_rewrite(messages: list[dict[str, Any]]) -> bool:
    return REWRITE_INSTRUCTION in str(messages[0].get("content", ""))


def _rewrite_requests(fake: FakeGroq) -> list[dict[str, Any]]:
    return [r for r in fake.requests if _is_rewrite(r["messages"])]


@contextlib.asynccontextmanager
async def _bot(database_url, tmp_path, embedder, fake: FakeGroq, **settings: object):
    bot = await BotHarness.start(
        database_url, tmp_path, embedder=embedder, groq_base_url=fake.base_url, **settings
    )
    try:
        for name, data in (("expenses.md", EXPENSES), ("rotation.md", ROTATION)):
            assert (await bot.upload(name, data)).ok
        yield bot
    finally:
        await bot.close()


async def _usage(bot: BotHarness, message_id) -> dict[str, TokenUsage]:
    async with bot.container.database.session() as db:
        rows = (
            await db.execute(select(TokenUsage).where(TokenUsage.message_id == message_id))
        ).scalars()
        return {row.operation: row for row in rows}


@contextlib.asynccontextmanager
async def _fake(model: Model) -> AsyncIterator[FakeGroq]:
    async with FakeGroq(responder=model) as fake:
        yield fake


async def test_a_paraphrase_the_gate_refuses_is_answered_after_a_rewrite(
    database_url, tmp_path, embedder
) -> None:
    model = Model()
    async with _fake(model) as fake, _bot(database_url, tmp_path, embedder, fake) as bot:
        # the rewrite adds nothing (the question comes back unchanged): the gate refuses
        refused = await bot.say(PARAPHRASE, thread="T-unchanged")
        asked_before = len(fake.requests)
        model.rewrites[PARAPHRASE] = REWRITE
        answer = await bot.say(PARAPHRASE, thread="T-rewritten")
        usage = await _usage(bot, answer.message_id)
        refused_usage = await _usage(bot, refused.message_id)
    assert refused.abstained and asked_before == 1  # the rewrite asked, no answer requested
    assert set(refused_usage) == {"rewrite", "embedding"}
    # rewritten, searched again, accepted by the gate, answered and cited from the handbook
    rewrite, answering = fake.requests[asked_before:]
    assert answer.mode == "llm" and answer.grounded and not answer.abstained
    assert "never reimbursed" in answer.text
    assert [c.title for c in answer.citations] == ["expenses.md"]
    assert _is_rewrite(rewrite["messages"]) and not _is_rewrite(answering["messages"])
    # the rewrite request: the instruction, the question, a short deterministic reply
    system, user = rewrite["messages"]
    assert system["role"] == "system" and "Reply with the query only" in system["content"]
    assert user["role"] == "user" and f"Question: {PARAPHRASE}" in user["content"]
    assert rewrite["temperature"] == 0.0 and rewrite["max_completion_tokens"] <= 64
    assert not rewrite.get("stream")
    # the answer is asked for the person's own question, from the source the rewrite found
    assert answering["messages"][-1]["content"].rstrip().endswith(f"Question: {PARAPHRASE}")
    assert "Alcohol is never reimbursed" in answering["messages"][-1]["content"]
    # the rewrite's tokens under their own operation, beside the answer's
    assert set(usage) == {"rewrite", "chat", "embedding"}
    prompt = system["content"] + user["content"]
    assert usage["rewrite"].prompt_tokens == count_tokens(prompt)
    assert usage["rewrite"].completion_tokens == count_tokens(REWRITE)
    assert usage["rewrite"].model == usage["chat"].model
    # one embedding row for the question, its tokens those of both searches
    assert usage["embedding"].embedding_tokens > refused_usage["embedding"].embedding_tokens
    assert answer.usage.prompt_tokens == usage["rewrite"].prompt_tokens + (
        usage["chat"].prompt_tokens
    )


async def test_a_question_the_gate_accepts_makes_no_rewrite_call(
    database_url, tmp_path, embedder
) -> None:
    async with _fake(Model()) as fake, _bot(database_url, tmp_path, embedder, fake) as bot:
        answer = await bot.say(LITERAL)
        usage = await _usage(bot, answer.message_id)
    assert answer.mode == "llm" and not answer.abstained
    assert len(fake.requests) == 1 and not _rewrite_requests(fake)
    assert set(usage) == {"chat", "embedding"}


async def test_a_hung_rewrite_abstains_within_the_budget_and_calls_no_more(
    database_url, tmp_path, embedder
) -> None:
    model = Model()
    model.rewrites[PARAPHRASE] = REWRITE
    async with (
        _fake(model) as fake,
        _bot(database_url, tmp_path, embedder, fake, GROQ_TIMEOUT=BUDGET) as bot,
    ):
        fake.hang(times=10)
        started = time.perf_counter()
        answer = await asyncio.wait_for(bot.say(PARAPHRASE), BUDGET * 10)
        elapsed = time.perf_counter() - started
        usage = await _usage(bot, answer.message_id)
    assert elapsed < BUDGET * SLACK
    assert answer.abstained and answer.text == "I couldn't find that in general."
    # the rewrite's one attempt, no retry past the budget, and no answer requested after it
    assert len(fake.requests) == 1 and _is_rewrite(fake.requests[0]["messages"])
    assert set(usage) == {"embedding"}


async def test_a_failing_rewrite_abstains_and_asks_for_no_answer(
    database_url, tmp_path, embedder
) -> None:
    model = Model()
    model.rewrites[PARAPHRASE] = REWRITE
    async with _fake(model) as fake, _bot(database_url, tmp_path, embedder, fake) as bot:
        fake.fail(503, times=3, retry_after_ms=5)  # the call and the SDK's two retries
        answer = await bot.say(PARAPHRASE)
        # the model is back: the next question is rewritten and answered
        later = await bot.say(PARAPHRASE, thread="T-later")
    assert answer.abstained
    assert len(fake.requests) == 5
    assert all(_is_rewrite(r["messages"]) for r in fake.requests[:4])
    assert later.mode == "llm" and "never reimbursed" in later.text


async def test_a_follow_up_the_gate_refuses_is_rewritten_from_its_standalone_form(
    database_url, tmp_path, embedder
) -> None:
    model = Model()
    model.rewrites[PARAPHRASE] = REWRITE
    condensed: list[str] = []

    def responder(messages: list[dict[str, Any]]) -> str:
        if "standalone question" in messages[0]["content"]:
            condensed.append(messages[-1]["content"])
            return PARAPHRASE
        return model(messages)

    async with (
        FakeGroq(responder=responder) as fake,
        _bot(database_url, tmp_path, embedder, fake) as bot,
    ):
        first = await bot.say("How are expense claims approved?", thread="T-follow")
        asked = len(fake.requests)
        follow = await bot.say("and can I put booze on the tab?", thread="T-follow")
        usage = await _usage(bot, follow.message_id)
    assert not first.abstained and condensed
    # condensed, then rewritten (the standalone question), then answered
    condense, rewrite, answering = fake.requests[asked:]
    assert "standalone question" in condense["messages"][0]["content"]
    assert f"Question: {PARAPHRASE}" in rewrite["messages"][-1]["content"]
    assert not _is_rewrite(answering["messages"])
    assert follow.mode == "llm" and "never reimbursed" in follow.text
    assert set(usage) == {"condense", "rewrite", "chat", "embedding"}
