"""Native streaming on Slack: a loading status, the held first words, chat.startStream /
appendStream / stopStream through slack_sdk's AsyncChatStream against the fake Slack, the
fallback to edits, the refusal memory, and the calls an answer costs against the edit path."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from adapters.slack.reply import NativeStream, SlackReply, StreamRefusals, settled
from core.generation.base import Source
from core.generation.citations import StreamPreview, parse_and_validate
from core.types import Answer, Citation
from tests.fakes.slack_server import TEAM, Call, FakeSlack
from tests.scenarios.suite import HANDBOOK
from tests.slack.conftest import running_bot
from tests.slack.driver import SlackDriver

QUESTION = "How are travel expenses reimbursed?"
UNCITED = (
    "Travel expenses are paid back within two weeks once the receipt is in the portal, "
    "and **nothing else** is needed from you."
)
STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")
STATUS = "assistant.threads.setStatus"


def streamed_text(calls: list[Call]) -> str:
    """The markdown the bot sent over the stream methods, in order."""
    parts: list[str] = []
    for call in calls:
        if call.method not in STREAM_METHODS:
            continue
        parts.append(str(call.params.get("markdown_text") or ""))
        chunks = call.params.get("chunks") or []
        parts += [c["text"] for c in chunks if c.get("type") == "markdown_text"]
    return "".join(parts)


def thread_messages(bot: SlackDriver, thread: Any) -> list[dict[str, Any]]:
    return bot.slack.thread(thread.channel, thread.thread)


def answer_calls(calls: list[Call]) -> list[Call]:
    """The calls that show an answer: the status, posts, edits, deletes and stream calls."""
    return [c for c in calls if c.method.startswith("chat.") or c.method == STATUS]


async def test_answer_streams_natively_and_ends_with_sources_and_buttons(
    sqlite_databases, tmp_path, embedder
) -> None:
    url = sqlite_databases.create(tmp_path / "s.db")
    async with running_bot(url, tmp_path, embedder, chunk_delay=0.3) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        before = len(bot.slack.calls)
        thread = await bot.mention(QUESTION, user="U7")
        [message] = await bot.bot_messages(thread)
        assert "14 days" in message.text and "[1]" in message.text
        assert message.sources and message.has_feedback_buttons
        # a status while core searched, no placeholder message; Slack cleared the status
        calls = answer_calls(bot.slack.calls[before:])
        assert calls[0].method == STATUS
        assert calls[0].params["status"] == "is searching general…"
        assert not [c for c in bot.slack.calls[before:] if c.method == "chat.postMessage"]
        assert not bot.slack.status_shown and bot.slack.deleted == []
        [start] = bot.slack.methods("chat.startStream")
        assert start.params["thread_ts"] == thread.thread
        assert start.params["recipient_team_id"] == TEAM
        assert start.params["recipient_user_id"] == "U7"
        appends = bot.slack.methods("chat.appendStream")
        # ~5 s of words: appends wait until the edit path would have spent as many calls,
        # then at most one a second
        assert 1 <= len(appends) <= 3
        gaps = [b.at - a.at for a, b in zip([start, *appends], appends, strict=False)]
        assert all(gap >= 0.9 for gap in gaps), gaps
        # the stream stopped with the rest of the text (the checked marker included) and the
        # Sources and buttons under it: no edit
        [shown] = thread_messages(bot, thread)
        assert "".join(shown["stream_chunks"]) == streamed_text(bot.slack.calls) == shown["text"]
        assert shown["text"].startswith("Travel expenses are reimbursed within 14 days")
        assert shown["text"].endswith("portal [1].")
        [stop] = bot.slack.methods("chat.stopStream")
        assert stop.params["ts"] == shown["ts"]
        assert [c.method for c in calls[-len(appends) - 2 :]] == [
            "chat.startStream",
            *["chat.appendStream"] * len(appends),
            "chat.stopStream",
        ]
        assert "chat.update" not in [c.method for c in calls]


async def test_an_answer_that_ends_within_the_hold_is_posted_whole(
    sqlite_databases, tmp_path, embedder
) -> None:
    """Two calls, as the edit path's placeholder and final edit: the status, then the answer."""
    url = sqlite_databases.create(tmp_path / "s.db")
    async with running_bot(url, tmp_path, embedder, chunk_delay=0.01) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        before = len(bot.slack.calls)
        thread = await bot.mention(QUESTION)
        [message] = await bot.bot_messages(thread)
        assert "14 days" in message.text and message.sources and message.has_feedback_buttons
        calls = answer_calls(bot.slack.calls[before:])
        statuses = [c for c in calls if c.method == STATUS]
        assert 1 <= len(statuses) <= 2  # the early generic one when core was slower than 0.3 s
        assert [c.method for c in calls[len(statuses) :]] == ["chat.postMessage"]
        assert not bot.slack.status_shown


async def test_checked_markers_stream_and_the_stream_stops_without_an_edit(
    sqlite_databases, tmp_path, embedder
) -> None:
    """A sentence's citation marker streams once core has checked it (as the final answer
    shows it: a marker beyond the sources dropped), so the stream stops with the rest and no
    edit."""
    url = sqlite_databases.create(tmp_path / "s.db")
    said = (
        "Travel expenses are reimbursed within 14 days [1]. Vacation is 25 days a year [9]. "
        "Receipts go to the portal [1]."
    )
    async with running_bot(
        url, tmp_path, embedder, responder=lambda messages: said, chunk_delay=0.3
    ) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        thread = await bot.mention(QUESTION)
        [message] = await bot.bot_messages(thread)
        assert message.sources and message.has_feedback_buttons
        [shown] = thread_messages(bot, thread)
        sent = streamed_text(bot.slack.calls)
        assert sent.startswith(
            "Travel expenses are reimbursed within 14 days [1]. Vacation is 25 days a year. "
        )
        assert shown["text"] == sent and sent.endswith("portal [1].")
        [stop] = bot.slack.methods("chat.stopStream")
        assert stop.params["ts"] == shown["ts"]
        assert not [c for c in bot.slack.methods("chat.update") if c.params["ts"] == shown["ts"]]


async def test_text_that_streamed_whole_stops_with_the_footer_and_no_edit(
    sqlite_databases, tmp_path, embedder
) -> None:
    url = sqlite_databases.create(tmp_path / "s.db")
    responder = lambda messages: UNCITED  # noqa: E731
    async with running_bot(url, tmp_path, embedder, responder=responder, chunk_delay=0.1) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        thread = await bot.mention(QUESTION)
        [message] = await bot.bot_messages(thread)
        [shown] = thread_messages(bot, thread)
        assert shown["text"] == UNCITED == streamed_text(bot.slack.calls)
        assert "".join(shown["stream_chunks"]) == UNCITED
        assert message.has_feedback_buttons and render.NOT_GROUNDED in message.text
        [stop] = bot.slack.methods("chat.stopStream")
        assert [b.get("block_id") for b in stop.params["blocks"]][-1] == render.FEEDBACK_BLOCK
        assert not [c for c in bot.slack.methods("chat.update") if c.params["ts"] == shown["ts"]]


async def test_refusal_falls_back_to_edits_and_is_remembered_for_the_workspace(
    sqlite_databases, tmp_path, embedder
) -> None:
    url = sqlite_databases.create(tmp_path / "s.db")
    async with running_bot(url, tmp_path, embedder, chunk_delay=0.15) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        bot.slack.refuse_streaming("not_allowed")
        first = await bot.mention(QUESTION)
        [answer] = await bot.bot_messages(first)
        assert "14 days" in answer.text and answer.sources and answer.has_feedback_buttons
        assert len(bot.slack.methods("chat.startStream")) == 1
        [posted] = [
            c
            for c in bot.slack.methods("chat.postMessage")
            if c.params["thread_ts"] == first.thread
        ]
        assert posted.params["text"].endswith(" …")  # the held first words, then edits
        assert bot.slack.deleted == [] and not bot.slack.status_shown
        statuses = len(bot.slack.methods(STATUS))
        second = await bot.mention("How many vacation days do we get?", user="U2")
        [again] = await bot.bot_messages(second)
        assert "25 days" in again.text and again.sources and again.has_feedback_buttons
        assert len(bot.slack.methods("chat.startStream")) == 1  # not tried again
        assert len(bot.slack.methods(STATUS)) == statuses  # the usual placeholder instead
        [placeholder, *_] = [
            c
            for c in bot.slack.methods("chat.postMessage")
            if c.params["thread_ts"] == second.thread
        ]
        assert placeholder.params["text"].startswith("_Searching")


async def test_channel_type_refusal_is_remembered_for_that_channel_only(
    sqlite_databases, tmp_path, embedder
) -> None:
    url = sqlite_databases.create(tmp_path / "s.db")
    async with running_bot(url, tmp_path, embedder, chunk_delay=0.1) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        for channel in ("C5", "C6"):  # a file dropped in a channel is answered there
            await bot.upload("handbook.md", HANDBOOK, channel=channel)
        bot.slack.error("chat.startStream", "channel_type_not_supported")
        await bot.bot_messages(await bot.mention(QUESTION, channel="C5"))
        await bot.bot_messages(await bot.mention(QUESTION, channel="C5"))
        assert len(bot.slack.methods("chat.startStream")) == 1
        [answer] = await bot.bot_messages(await bot.mention(QUESTION, channel="C6"))
        assert len(bot.slack.methods("chat.startStream")) == 2 and answer.has_feedback_buttons


async def test_a_refused_status_falls_back_to_a_placeholder_that_gives_way(
    sqlite_databases, tmp_path, embedder
) -> None:
    url = sqlite_databases.create(tmp_path / "s.db")
    async with running_bot(url, tmp_path, embedder, chunk_delay=0.15) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        bot.slack.error(STATUS, "missing_scope")
        thread = await bot.mention(QUESTION)
        [message] = await bot.bot_messages(thread)
        assert message.sources and message.has_feedback_buttons
        [placeholder] = [
            c
            for c in bot.slack.methods("chat.postMessage")
            if c.params["thread_ts"] == thread.thread
        ]
        assert placeholder.params["text"].startswith("_Searching")
        assert len(bot.slack.methods("chat.startStream")) == 1 and len(bot.slack.deleted) == 1
        statuses = len(bot.slack.methods(STATUS))
        await bot.bot_messages(await bot.mention(QUESTION))
        assert len(bot.slack.methods(STATUS)) == statuses  # remembered for the workspace


async def test_stream_that_dies_midway_ends_as_an_edited_answer(
    sqlite_databases, tmp_path, embedder
) -> None:
    url = sqlite_databases.create(tmp_path / "s.db")
    async with running_bot(url, tmp_path, embedder, chunk_delay=0.3) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        bot.slack.error("chat.appendStream", "message_not_in_streaming_state")
        thread = await bot.mention(QUESTION)
        [message] = await bot.bot_messages(thread)
        assert "14 days" in message.text and message.sources and message.has_feedback_buttons
        assert len(bot.slack.methods("chat.appendStream")) == 1  # then edits
        # a later answer streams again: a dying stream is not a refusal
        [again] = await bot.bot_messages(await bot.mention(QUESTION))
        assert again.sources and len(bot.slack.methods("chat.startStream")) == 2


# -- the reply alone, through the real SDK against the fake Slack -----------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def long_answer(paragraphs: int) -> Answer:
    text = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum dolor " * 160 for i in range(paragraphs))
    citation = Citation(1, uuid.uuid4(), uuid.uuid4(), "Handbook", "lorem ipsum")
    return Answer(text=text + " [1]", citations=(citation,), message_id=uuid.uuid4())


async def test_long_answer_ends_complete_over_several_messages() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        clock = Clock()
        native = NativeStream(TEAM, "U1", StreamRefusals(), interval=1.0)
        reply = SlackReply(client, channel="C1", thread_ts="1.1", clock=clock, native=native)
        answer = long_answer(60)
        await reply.thinking(["general"])
        words = answer.text.split(" ")
        for i in range(0, len(words), 40):
            clock.now += 0.25
            await reply.stream(" ".join(words[: i + 40]))
        await reply.finish(answer)
        shown = slack.thread("C1", "1.1")
        assert len(shown) == len(render.answer_messages(answer)) > 1
        joined = "\n".join(render_text(m) for m in shown)
        for i in range(60):
            assert f"Paragraph {i}:" in joined
        assert any(b.get("block_id") == render.FEEDBACK_BLOCK for b in shown[-1]["blocks"])
        # the stream stopped appending at Slack's 12,000-character limit for one text
        assert len(streamed_text(slack.calls)) <= 12_000
        assert len(slack.methods("chat.stopStream")) == 1


def render_text(message: dict[str, Any]) -> str:
    return "\n".join(
        b["text"]["text"] for b in message["blocks"] if b.get("type") == "section"
    ) or str(message["text"])


async def answer_in_words(reply: SlackReply, clock: Clock, *, words: int, every: float) -> str:
    """The reply's thinking, ``words`` words at a steady rate, then the answer (uncited)."""
    await reply.thinking(["general"])
    text = ""
    for i in range(words):
        text += f"word{i} "
        clock.now += every
        await reply.stream(text)
    final = text.strip()
    await reply.finish(Answer(text=final, grounded=True, message_id=uuid.uuid4()))
    return final


async def test_appends_are_paced_within_the_calls_edits_would_make() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        clocks = Clock(), Clock()
        native = NativeStream(TEAM, "U1", StreamRefusals(), interval=1.0)
        streamed = SlackReply(client, channel="C1", thread_ts="1.1", clock=clocks[0], native=native)
        edited = SlackReply(client, channel="C1", thread_ts="2.2", clock=clocks[1])
        for reply, clock in ((streamed, clocks[0]), (edited, clocks[1])):
            await answer_in_words(reply, clock, words=80, every=0.1)  # 8 s of words
        appends = slack.methods("chat.appendStream")
        assert len(slack.methods("chat.startStream")) == 1 and len(appends) >= 3
        assert all(a.params["chunks"] for a in appends)
        # two calls in hand for an ending that replaces the text: within edits even then
        assert streamed.calls + 1 <= edited.calls, (streamed.calls, edited.calls)
        final = " ".join(f"word{i}" for i in range(80))
        assert streamed_text(slack.calls) == final  # deltas only, nothing twice
        [shown] = slack.thread("C1", "1.1")
        assert shown["text"] == final and shown["blocks"][-1]["block_id"] == render.FEEDBACK_BLOCK


# -- calls and first words at a steady rate, in real time, against the edit path ------------------

MARKED = Citation(1, uuid.uuid4(), uuid.uuid4(), "Handbook", "word0")
SENTENCE = "Travel expenses are reimbursed within 14 days when the receipt is in the portal"
SOURCE = Source(1, str(uuid.uuid4()), str(uuid.uuid4()), "Handbook", f"{SENTENCE}.", None, 0, 80, 1)


def model_text(shape: str, words: int) -> str:
    """What the model writes: uncited words (``end``, and ``inside``, whose answer then gets a
    marker the stream never showed, as one core could not settle while streaming), or the
    bench's markers after each sentence (``sentences``)."""
    if shape == "sentences":
        return " ".join(f"{SENTENCE} [1]." for _ in range(words // len(SENTENCE.split())))
    return " ".join(f"word{i}" for i in range(words))


async def steady_answer(
    slack: FakeSlack, reply: SlackReply, *, words: int, seconds: float, shape: str
) -> dict[str, Any]:
    """Thinking, 0.35 s of search and model latency, the model's words (``model_text``) over
    ``seconds`` shown as core previews them, then the checked answer. The calls it made and
    when the first words showed, after the first token."""
    before = len(slack.calls)
    said = model_text(shape, words).split(" ")
    shown = StreamPreview([SOURCE])
    await reply.thinking(["general"])
    await asyncio.sleep(0.35)
    first_token = time.monotonic()
    for i in range(len(said)):
        await reply.stream(shown(" ".join(said[: i + 1]) + " "))
        await asyncio.sleep(seconds / len(said))
    body, citations = parse_and_validate(" ".join(said), [SOURCE])
    if shape == "inside":
        body, citations = body.replace("word0", "word0 [1]", 1), [MARKED]
    await reply.finish(Answer(text=body, citations=tuple(citations), message_id=uuid.uuid4()))
    calls = answer_calls(slack.calls[before:])
    words_at = next(
        c.at
        for c in calls
        if c.method in ("chat.startStream", "chat.postMessage", "chat.update")
        and not str(c.params.get("text", "")).startswith("_Searching")
    )
    return {"calls": [c.method for c in calls], "first_words": words_at - first_token}


@pytest.mark.parametrize(
    ("seconds", "shape"),
    [(seconds, shape) for shape in ("end", "inside") for seconds in (0.3, 3.0)]
    + [(seconds, "sentences") for seconds in (0.3, 0.8, 1.5, 3.0)],
)
async def test_native_answers_cost_no_more_calls_than_edits(seconds: float, shape: str) -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        native = NativeStream(TEAM, "U1", StreamRefusals())
        streamed = SlackReply(client, channel="C1", thread_ts="1.1", native=native)
        edited = SlackReply(client, channel="C1", thread_ts="2.2")
        words = 30
        got = await steady_answer(slack, streamed, words=words, seconds=seconds, shape=shape)
        base = await steady_answer(slack, edited, words=words, seconds=seconds, shape=shape)
        assert len(got["calls"]) <= len(base["calls"]), (got["calls"], base["calls"])
        assert got["first_words"] <= 1.0, got
        for ts in ("1.1", "2.2"):
            [shown] = slack.thread("C1", ts)
            assert shown["blocks"][-1]["block_id"] == render.FEEDBACK_BLOCK
            assert ("[1]" in render_text(shown)) == (shape != "end")
        assert not slack.status_shown
    if seconds < 0.8:  # ended within the hold: the status, then the whole answer
        assert got["calls"] == ["assistant.threads.setStatus", "chat.postMessage"]
        assert base["calls"] == ["chat.postMessage", "chat.update"]
    else:
        assert got["calls"][:2] == ["assistant.threads.setStatus", "chat.startStream"]
        assert got["first_words"] >= 0.7, got  # held, for an answer that might have ended
        assert "chat.stopStream" in got["calls"] and "chat.delete" not in got["calls"]
    if shape == "sentences":  # the checked markers streamed: the stream stops, no edit
        assert "chat.update" not in got["calls"], got["calls"]
        assert "[1]." in streamed_text(slack.calls) or seconds < 0.8


async def test_first_words_show_within_the_hold_when_the_model_pauses() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        native = NativeStream(TEAM, "U1", StreamRefusals())
        reply = SlackReply(client, channel="C1", thread_ts="1.1", native=native)
        await reply.thinking(["general"])
        first = time.monotonic()
        await reply.stream("Travel expenses are")
        await asyncio.sleep(1.5)  # no more tokens for a while
        [start] = slack.methods("chat.startStream")
        assert 0.7 <= start.at - first <= 1.0
        assert streamed_text(slack.calls) == "Travel expenses"  # "are" may still grow
        await reply.stream("Travel expenses are reimbursed")
        said = "Travel expenses are reimbursed."
        await reply.finish(Answer(text=said, grounded=True, message_id=uuid.uuid4()))
        [shown] = slack.thread("C1", "1.1")
        assert shown["text"] == said and not slack.methods("chat.update")


async def test_a_discarded_answer_clears_its_status() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        native = NativeStream(TEAM, "U1", StreamRefusals())
        reply = SlackReply(client, channel="C1", thread_ts="1.1", native=native)
        await reply.thinking(())
        await reply.thinking(["general"])
        assert slack.status_shown == {("C1", "1.1"): "is searching general…"}
        await reply.discard()
        assert slack.statuses[("C1", "1.1")] == ["is searching…", "is searching general…", ""]
        assert not slack.status_shown and slack.thread("C1", "1.1") == []


def test_settled_text_holds_back_what_may_still_change() -> None:
    assert settled("Hello wor") == "Hello"
    assert settled("Hello world ") == "Hello world"
    assert settled("ask @her") == "ask"  # may become @here
    assert settled("see [the portal](https://it.exa") == "see"
    assert settled("see [the portal] and more") == "see [the portal] and"
    shown = render.stream_markdown("see [the portal](https://it.example.com) now <!here> @here")
    assert "(https://it.example.com)" in shown and "](" not in shown
    assert "<!" not in shown and "@here" not in shown
