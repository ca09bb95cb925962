"""Autoanswer channels on SQLite and PostgreSQL, through the real pipeline, services and
retriever: a question left alone for want of knowledge is a gap (chit-chat never is), and a
question answered unasked is retrieved once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.container import Container
from core.answer import AnswerService
from core.autoanswer import AutoAnswerConfig, AutoAnswerService
from core.context import ContextResolver
from core.conversation import ConversationPipeline
from core.db.autoanswer import AutoAnswerStore
from core.db.gaps import AskedQuestion
from core.db.models import AutoAnswerDecision
from core.db.types import new_id, utcnow
from core.gaps import thread_url
from core.retrieval.retriever import Lookahead, Retrieval, Retriever
from core.search import Searched
from core.types import Answer, IncomingFile, IncomingMessage, Progress, UploadOutcome
from tests.harness import BotHarness, RecordingReply
from tests.scenarios.suite import HANDBOOK

QUESTION = "How many days of paid vacation do employees get?"
WIFI = "What is the wifi password in the Berlin office?"
WIFI_AGAIN = "What's the wifi password in the Berlin office?"
CHIT_CHAT = "good morning team!"


@dataclass
class Shown:
    """A Reply that keeps what was shown."""

    calls: list[tuple[str, object]] = field(default_factory=list)

    async def thinking(self, namespaces: Sequence[str]) -> None:
        self.calls.append(("thinking", tuple(namespaces)))

    async def stream(self, text_so_far: str) -> None:
        self.calls.append(("stream", text_so_far))

    async def progress(self, progress: Progress) -> None:
        self.calls.append(("progress", progress))

    async def finish(self, answer: Answer) -> None:
        self.calls.append(("finish", answer))

    async def done(self, outcome: UploadOutcome) -> None:
        self.calls.append(("done", outcome))

    async def fail(self, text: str) -> None:
        self.calls.append(("fail", text))

    async def discard(self) -> None:
        self.calls.append(("discard", None))


@dataclass
class Channel:
    """A ReplyChannel: the replies the pipeline made, in order."""

    replies: list[Shown] = field(default_factory=list)

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        return message

    def reply(self, file: IncomingFile | None = None) -> Shown:
        self.replies.append(Shown())
        return self.replies[-1]

    def answers(self) -> list[Answer]:
        return [a for r in self.replies for kind, a in r.calls if isinstance(a, Answer)]


class CountingRetriever(Retriever):
    """The real retriever, counting the searches and early embeddings asked of it."""

    def __init__(self, **ports: Any) -> None:
        super().__init__(**ports)
        self.searched: list[str] = []
        self.embedded_ahead: list[str] = []

    def embed_ahead(self, query: str) -> Lookahead:
        self.embedded_ahead.append(query)
        return super().embed_ahead(query)

    async def search(self, query: str, **where: Any) -> Retrieval:
        self.searched.append(query)
        return await super().search(query, **where)


@pytest.fixture
async def bot(database_url, tmp_path, embedder):
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    await harness.upload("handbook.md", HANDBOOK)
    said = await harness.admin("channel autoanswer on")
    assert said.ok and "Autoanswer is on" in said.text, said.text
    yield harness
    await harness.close()


def _top_level(bot: BotHarness, text: str, message_id: str) -> IncomingMessage:
    return bot.message(text, thread=message_id, message_id=message_id)


def _services(
    c: Container, retriever: Retriever, config: AutoAnswerConfig | None = None
) -> tuple[AnswerService, AutoAnswerService]:
    """The container's answer and autoanswer services, over ``retriever``."""
    resolver = ContextResolver(
        c.identity,
        c.knowledge,
        embedding_model=c.embedder.model_name,
        places=c.places,
        organisation=c.organisation,
    )
    answers = AnswerService(
        identity=c.identity,
        conversation=c.conversation,
        usage=c.usage,
        resolver=resolver,
        retriever=retriever,
        quota=c.quota,
        llm=None,
        prices=c.prices,
    )
    auto = AutoAnswerService(
        store=AutoAnswerStore(c.database), resolver=resolver, retriever=retriever, config=config
    )
    return answers, auto


async def _decisions(c: Container) -> list[AutoAnswerDecision]:
    async with c.database.session() as db:
        rows = await db.execute(select(AutoAnswerDecision).order_by(AutoAnswerDecision.created_at))
        return list(rows.scalars())


async def test_a_question_left_alone_is_a_gap_chit_chat_is_not(bot) -> None:
    c = bot.container
    pipe = ConversationPipeline(answers=c.answers, uploads=c.uploads, autoanswer=c.autoanswer)
    channel = Channel()
    for i, text in enumerate((WIFI, CHIT_CHAT, QUESTION)):
        await pipe.handle(_top_level(bot, text, f"m{i}"), channel, addressed=False)
    [answered] = channel.answers()  # the wifi question and the greeting: nothing shown
    assert "25 days" in answered.text and len(channel.replies) == 1

    left, taken = await _decisions(c)  # the greeting asks nothing: never judged
    assert not left.answered and left.reason in ("unsure", "no knowledge")
    assert (left.question, left.thread_key) == (WIFI, "m0")
    assert taken.answered and (taken.question, taken.thread_key) == (None, None)

    # asked with a mention it abstains: the same gap, once asked each way
    assert (await bot.say(WIFI_AGAIN, thread="asked")).abstained
    report = await bot.admin("gaps 7d")
    lines = report.text.splitlines()
    assert lines[0] == "Unanswered questions (7d): 2 asked, 1 topics", report.text
    assert lines[1].startswith("• What's the wifi password in the Berlin office? (2x, 1 without")
    assert CHIT_CHAT not in report.text and QUESTION not in report.text

    gaps = await c.gaps.report(
        since=utcnow() - timedelta(days=1), until=utcnow(), workspace_id=None
    )
    [group] = gaps.as_json()["groups"]
    assert (group["count"], group["unasked"], group["wordings"]) == (2, 1, [WIFI])


async def test_a_question_left_alone_by_the_rate_limit_keeps_no_text(bot) -> None:
    c = bot.container
    retriever = CountingRetriever(embedder=c.embedder, vectors=c.vectors, knowledge=c.knowledge)
    answers, auto = _services(c, retriever, AutoAnswerConfig(limit=0))
    pipe = ConversationPipeline(answers=answers, uploads=c.uploads, autoanswer=auto)

    await pipe.handle(_top_level(bot, WIFI, "m1"), Channel(), addressed=False)

    [decision] = await _decisions(c)
    assert (decision.reason, decision.question, decision.thread_key) == ("rate", None, None)
    assert retriever.searched == []  # over the limit before any search
    assert "No unanswered questions" in (await bot.admin("gaps 7d")).text


async def test_a_question_answered_unasked_is_retrieved_once(bot) -> None:
    c = bot.container
    retriever = CountingRetriever(embedder=c.embedder, vectors=c.vectors, knowledge=c.knowledge)
    answers, auto = _services(c, retriever)
    pipe = ConversationPipeline(answers=answers, uploads=c.uploads, autoanswer=auto)
    channel = Channel()

    await pipe.handle(_top_level(bot, QUESTION, "m1"), channel, addressed=False)

    [answer] = channel.answers()
    assert "25 days" in answer.text and answer.citations
    assert retriever.searched == [QUESTION]  # the decision's search, reused by the answer
    assert retriever.embedded_ahead == []  # nor is the question embedded again

    # a mention is not decided first: one search, its embedding started early
    await pipe.handle(_top_level(bot, "When do unused days expire?", "m2"), channel, addressed=True)
    assert "March 31" in channel.answers()[-1].text
    assert retriever.searched == [QUESTION, "When do unused days expire?"]
    assert retriever.embedded_ahead == ["When do unused days expire?"]


async def test_a_search_for_other_text_or_namespaces_is_not_reused(bot) -> None:
    c = bot.container
    retriever = CountingRetriever(embedder=c.embedder, vectors=c.vectors, knowledge=c.knowledge)
    answers, _ = _services(c, retriever)
    nothing = Retrieval((), 0, 0, 0)
    elsewhere = Searched(QUESTION, frozenset({new_id()}), 5, nothing)
    other_text = Searched("How do I file expenses?", frozenset(), 5, nothing)

    for i, searched in enumerate((elsewhere, other_text)):
        message = bot.message(QUESTION, thread=f"t{i}")
        answer = await answers.answer(message, RecordingReply(), searched=searched)  # type: ignore[arg-type]
        assert "25 days" in answer.text, searched

    assert retriever.searched == [QUESTION, QUESTION]
    # the same text is not embedded early (its search may be reused); another text's is
    assert retriever.embedded_ahead == [QUESTION]


def test_a_gap_left_alone_links_to_its_message() -> None:
    asked = AskedQuestion(
        id=new_id(),
        text=WIFI,
        asked_at=utcnow(),
        mode="abstain",
        ups=0,
        downs=0,
        platform="discord",
        workspace="111",
        channel_id=new_id(),
        channel="222",
        channel_name="general",
        thread="333",
        unasked=True,
    )
    # no thread was started from it on Discord: the link opens the message in its channel
    assert thread_url(asked) == "https://discord.com/channels/111/222/333"
    assert thread_url(AskedQuestion(**{**_fields(asked), "unasked": False})) == (
        "https://discord.com/channels/111/333"
    )
    slack = AskedQuestion(**{**_fields(asked), "platform": "slack", "thread": "1718.0001"})
    assert thread_url(slack) == "https://app.slack.com/client/111/222/thread/222-1718.0001"


def _fields(q: AskedQuestion) -> dict[str, Any]:
    return {name: getattr(q, name) for name in AskedQuestion.__dataclass_fields__}
