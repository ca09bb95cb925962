"""Channels that answer themselves, the same on every chat platform: run by
``tests/slack/test_autoanswer.py`` and ``tests/discord/test_autoanswer.py`` with their drivers.

"Nothing at all" is checked on the fake platform itself: no call that posts, edits, sets a
status, types or reacts reaches it for a message the bot leaves alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from sqlalchemy import select

from core.db.models import AuditLog, AutoAnswerDecision
from core.db.types import utcnow
from tests.scenarios.driver import ChatDriver, Thread
from tests.scenarios.suite import HANDBOOK

QUESTION = "How many days of paid vacation do employees get?"
CHIT_CHAT = ("anyone up for lunch?", "good morning team!", "Did you see the game last night?")
UNANSWERABLE = "What is the wifi password in the Berlin office?"


class AutoDriver(ChatDriver, Protocol):
    async def speak(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        """A top-level channel message without a mention."""
        ...

    def platform_writes(self) -> int:
        """Calls so far that showed something on the platform."""
        ...


async def _channel_with_handbook(bot: AutoDriver, *, autoanswer: bool = True) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    if autoanswer:
        said = await bot.command("channel autoanswer on", admin=True)
        assert "Autoanswer is on" in said, said


async def _decisions(bot: AutoDriver) -> list[Any]:
    async with bot.container.database.session() as db:
        rows = await db.execute(select(AutoAnswerDecision).order_by(AutoAnswerDecision.created_at))
        return list(rows.scalars())


async def an_answerable_question_is_answered_unasked(bot: AutoDriver) -> None:
    await _channel_with_handbook(bot)
    thread = await bot.speak(QUESTION)
    messages = await bot.bot_messages(thread)
    assert len(messages) == 1, messages
    assert "25 days" in messages[0].text
    assert messages[0].sources and "handbook.md" in messages[0].sources[0]
    assert messages[0].has_feedback_buttons
    [decision] = await _decisions(bot)
    assert decision.answered and decision.reason == "confident"


async def chit_chat_and_unanswerable_questions_get_nothing(bot: AutoDriver) -> None:
    await _channel_with_handbook(bot)
    before, llm = bot.platform_writes(), bot.llm_calls()
    for text in (*CHIT_CHAT, UNANSWERABLE):
        thread = await bot.speak(text)
        assert await bot.bot_messages(thread) == [], text
    assert bot.platform_writes() == before
    assert bot.llm_calls() == llm
    decisions = await _decisions(bot)
    # "good morning team!" asks nothing: never judged
    assert len(decisions) == 3 and not any(d.answered for d in decisions)


async def a_question_left_alone_shows_in_gaps(bot: AutoDriver) -> None:
    await _channel_with_handbook(bot)
    for text in (UNANSWERABLE, CHIT_CHAT[1]):
        thread = await bot.speak(text)
        assert await bot.bot_messages(thread) == [], text
    said = await bot.command("gaps 7d", admin=True)
    assert "1 asked, 1 topics" in said, said
    assert UNANSWERABLE in said and "1 without a mention" in said
    assert CHIT_CHAT[1] not in said


async def a_channel_without_autoanswer_stays_silent(bot: AutoDriver) -> None:
    await _channel_with_handbook(bot, autoanswer=False)
    before = bot.platform_writes()
    thread = await bot.speak(QUESTION)
    assert await bot.bot_messages(thread) == []
    assert bot.platform_writes() == before
    assert await _decisions(bot) == []
    said = await bot.command("channel autoanswer off", admin=True)
    assert "Autoanswer is off" in said
    thread = await bot.speak(QUESTION)
    assert await bot.bot_messages(thread) == []


async def the_rate_limit_stops_auto_answers(bot: AutoDriver) -> None:
    await _channel_with_handbook(bot)
    first = await bot.speak(QUESTION)
    assert len(await bot.bot_messages(first)) == 1
    auto = bot.container.autoanswer
    assert auto is not None and auto.config.limit is not None
    [answered] = await _decisions(bot)
    store = auto._store  # the same rows other replicas would have written
    for _ in range(auto.config.limit - 1):
        await store.record(
            answered.channel_id, answered=True, probability=0.9, reason="confident", at=utcnow()
        )
    before = bot.platform_writes()
    late = await bot.speak("When do unused vacation days expire?")
    assert await bot.bot_messages(late) == []
    assert bot.platform_writes() == before
    assert (await _decisions(bot))[-1].reason == "rate"


async def only_admins_switch_autoanswer(bot: AutoDriver) -> None:
    refused = await bot.command("channel autoanswer on", user="U-not-admin", admin=False)
    assert "Only workspace admins" in refused, refused
    assert "Autoanswer is off" in await bot.command("channel autoanswer", admin=True)
    assert "Autoanswer is on" in await bot.command("channel autoanswer on", admin=True)
    assert "Autoanswer is on" in await bot.command("channel autoanswer", admin=True)
    async with bot.container.database.session() as db:
        rows = (await db.execute(select(AuditLog.command, AuditLog.outcome))).all()
    assert ("channel autoanswer", "refused") in rows
    assert ("channel autoanswer", "ok") in rows


Scenario = Callable[[Any], Awaitable[None]]
AUTOANSWER: list[Scenario] = [
    an_answerable_question_is_answered_unasked,
    chit_chat_and_unanswerable_questions_get_nothing,
    a_question_left_alone_shows_in_gaps,
    a_channel_without_autoanswer_stays_silent,
    the_rate_limit_stops_auto_answers,
    only_admins_switch_autoanswer,
]
