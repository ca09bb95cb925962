"""The conversation pipeline on its own: which words ask, the placeholder, errors, the cap and
the drain at shutdown. Core's services are small fakes here; the scenario suite runs the real
ones on every adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from core.conversation import ConversationPipeline, PipelineConfig, Timely, asks
from core.errors import LorekeeperError
from core.types import (
    Answer,
    IncomingFile,
    IncomingMessage,
    Platform,
    Progress,
    Reply,
    Status,
    UploadOutcome,
)
from core.wording import ANSWER_FAILED, UPLOAD_FAILED

# --- asks(): the words that come with a file ---------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "How many days of paid vacation do employees get?",
        "how many days of paid vacation",  # a question word first, no question mark
        "Summarise this",
        "summarize the attached, please",
        "Explain section 2",
        "Can you list the deadlines",
        "WHO signs off on expenses",
        "tl;dr?",  # a question mark anywhere
        "the expense rules, are they new?",
        "What's the vacation policy",  # a contraction
        "Please summarise this",  # a courtesy first
        "Hi! How many days do I get",  # a question after a greeting
        "Thanks. Check the expenses section",
    ],
)
def test_words_that_ask_something_are_answered(text: str) -> None:
    assert asks(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "here is the handbook",
        "Handbook v2 attached",
        "please index this",
        "FYI: the new travel policy",
        "the policy we talked about",
        "thanks, this is the handbook",
        "ok here it is",
    ],
)
def test_words_that_only_present_a_file_are_not(text: str) -> None:
    assert not asks(text)


# --- Timely: the placeholder and one call at a time -----------------------------------------


@dataclass
class SlowReply:
    """A Reply that records its calls; while ``gate`` is clear, each call waits on it."""

    calls: list[tuple[str, object]] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    running: int = 0
    peak: int = 0

    def __post_init__(self) -> None:
        self.gate.set()

    async def _call(self, name: str, value: object) -> None:
        self.running += 1
        self.peak = max(self.peak, self.running)
        self.entered.set()
        try:
            await self.gate.wait()
            self.calls.append((name, value))
        finally:
            self.running -= 1

    async def thinking(self, namespaces: Sequence[str]) -> None:
        await self._call("thinking", tuple(namespaces))

    async def stream(self, text_so_far: str) -> None:
        await self._call("stream", text_so_far)

    async def progress(self, progress: Progress) -> None:
        await self._call("progress", progress.stage)

    async def finish(self, answer: Answer) -> None:
        await self._call("finish", answer.text)

    async def done(self, outcome: UploadOutcome) -> None:
        await self._call("done", outcome.message)

    async def fail(self, text: str) -> None:
        await self._call("fail", text)

    async def discard(self) -> None:
        await self._call("discard", None)

    def placeholders(self) -> list[object]:
        return [value for name, value in self.calls if name == "thinking" and value == ()]


def placeholder_timer() -> asyncio.Task[object]:
    """The timer task Timely started (it names it), to wait until it has run its course."""
    return next(t for t in asyncio.all_tasks() if t.get_name() == "placeholder")


async def test_a_placeholder_goes_up_when_thinking_is_late() -> None:
    reply = SlowReply()
    shown = Timely(reply, 0.0)
    await placeholder_timer()
    assert reply.calls == [("thinking", ())]
    await shown.thinking(["general"])  # core's own words replace the generic ones
    await shown.finish(Answer(text="25 days"))
    await shown.close()
    assert reply.calls == [("thinking", ()), ("thinking", ("general",)), ("finish", "25 days")]


async def test_no_placeholder_when_thinking_is_early() -> None:
    reply = SlowReply()
    shown = Timely(reply, 0.0)
    timer = placeholder_timer()
    await shown.thinking(["general"])
    await timer  # its time came: core had already said it was thinking
    await shown.finish(Answer(text="25 days"))
    assert reply.placeholders() == []
    assert reply.calls == [("thinking", ("general",)), ("finish", "25 days")]


async def test_no_placeholder_after_the_ending_or_without_a_delay() -> None:
    ended = SlowReply()
    shown = Timely(ended, 0.0)
    await shown.fail("no")  # before the timer ran: it never posts
    await asyncio.gather(*[t for t in asyncio.all_tasks() if t.get_name() == "placeholder"])
    assert ended.calls == [("fail", "no")]

    never = SlowReply()
    shown = Timely(never, None)
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "placeholder"]
    await shown.finish(Answer(text="quick"))
    assert never.calls == [("finish", "quick")]


async def test_never_two_placeholders_and_never_two_calls_at_once() -> None:
    reply = SlowReply()
    reply.gate.clear()
    shown = Timely(reply, 0.0)
    timer = placeholder_timer()
    await reply.entered.wait()  # the placeholder is being posted (slowly)
    core = [
        asyncio.create_task(shown.thinking(["general"])),
        asyncio.create_task(shown.stream("25 days")),
    ]
    await asyncio.sleep(0)  # let core's calls queue behind the placeholder
    reply.gate.set()
    await asyncio.gather(timer, *core)
    await shown.finish(Answer(text="25 days"))
    assert reply.peak == 1
    assert reply.placeholders() == [()]
    assert reply.calls[0] == ("thinking", ()) and reply.calls[-1] == ("finish", "25 days")


async def test_a_timer_that_fires_while_core_says_thinking_posts_nothing() -> None:
    reply = SlowReply()
    reply.gate.clear()
    shown = Timely(reply, 0.0)
    timer = placeholder_timer()
    core = asyncio.create_task(shown.thinking(["general"]))
    await reply.entered.wait()
    # core's thinking is on its way to the platform; the timer fires meanwhile
    reply.gate.set()
    await asyncio.gather(core, timer)
    assert reply.placeholders() == [] and reply.calls == [("thinking", ("general",))]


async def test_discard_removes_the_placeholder_and_only_one_that_was_shown() -> None:
    shown_one = SlowReply()
    shown = Timely(shown_one, 0.0)
    await placeholder_timer()
    await shown.discard()
    assert shown_one.calls == [("thinking", ()), ("discard", None)]

    nothing = SlowReply()
    shown = Timely(nothing, 3600.0)
    await shown.discard()  # nothing was shown: nothing to remove, and the timer is stopped
    assert nothing.calls == []
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "placeholder" and not t.done()]


# --- the pipeline with fake services ----------------------------------------------------


def message(text: str, *, files: tuple[IncomingFile, ...] = ()) -> IncomingMessage:
    return IncomingMessage(
        platform=Platform.CONSOLE,
        workspace_id="W1",
        channel_id="C1",
        thread_id="T1",
        author_id="U1",
        text=text,
        event_id=f"ev-{text}-{len(files)}",
        received_at=datetime.now(UTC),
        files=files,
    )


@dataclass
class FakeAnswers:
    """AnswerService's face to the pipeline: answers wait for ``release`` when it is given."""

    release: asyncio.Event | None = None
    error: Exception | None = None
    asked: list[str] = field(default_factory=list)
    running: int = 0
    peak: int = 0

    async def knows_thread(self, message: IncomingMessage) -> bool:
        return False

    async def answer(
        self, message: IncomingMessage, reply: Status, *, searched: object = None
    ) -> Answer:
        self.asked.append(message.text)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await reply.thinking(["general"])
            if self.release is not None:
                await self.release.wait()
            if self.error is not None:
                raise self.error
            return Answer(text=f"answer to {message.text}")
        finally:
            self.running -= 1


@dataclass
class FakeUploads:
    error: Exception | None = None

    async def claim(self, message: IncomingMessage) -> bool:
        return True

    async def finished(self, message: IncomingMessage) -> None:
        return None

    def precheck(self, file: IncomingFile) -> str | None:
        return None

    async def ingest(
        self, message: IncomingMessage, file: IncomingFile, data: bytes, reply: Status
    ) -> UploadOutcome:
        if self.error is not None:
            raise self.error
        return UploadOutcome(file.filename, True, f"Indexed {file.filename}: 1 chunk.")


@dataclass
class Channel:
    """A ReplyChannel (and FileSource) that keeps every reply it handed out."""

    replies: list[SlowReply] = field(default_factory=list)

    async def prepare(self, message: IncomingMessage) -> IncomingMessage:
        return message

    def reply(self, file: IncomingFile | None = None) -> Reply:
        self.replies.append(SlowReply())
        return self.replies[-1]

    async def resolve(self, file: IncomingFile) -> IncomingFile:
        return file

    async def download(self, file: IncomingFile) -> bytes:
        return b"# Handbook\n"

    def endings(self) -> list[tuple[str, object]]:
        return [r.calls[-1] for r in self.replies if r.calls]


def pipeline(
    answers: FakeAnswers, uploads: FakeUploads | None = None, **config: float
) -> ConversationPipeline:
    return ConversationPipeline(
        answers=answers,  # type: ignore[arg-type]
        uploads=uploads or FakeUploads(),  # type: ignore[arg-type]
        config=PipelineConfig(**config),  # type: ignore[arg-type]
    )


HANDBOOK = IncomingFile(file_id="F1", filename="handbook.md", size=11)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Let the loop run until ``condition`` holds (failing after ``within`` seconds)."""
    async with asyncio.timeout(within):
        while True:  # polled: the pipeline has no event to say it
            if condition():
                return
            await asyncio.sleep(0)


async def test_a_file_with_a_question_is_indexed_then_answered() -> None:
    answers, channel = FakeAnswers(), Channel()
    pipe = pipeline(answers)
    await pipe.handle(
        message("How many vacation days?", files=(HANDBOOK,)),
        channel,
        addressed=True,
        files=channel,
    )
    assert channel.endings() == [
        ("done", "Indexed handbook.md: 1 chunk."),
        ("finish", "answer to How many vacation days?"),
    ]


async def test_a_file_that_is_only_presented_is_indexed_not_answered() -> None:
    answers, channel = FakeAnswers(), Channel()
    await pipeline(answers).handle(
        message("here is the handbook", files=(HANDBOOK,)), channel, addressed=True, files=channel
    )
    assert channel.endings() == [("done", "Indexed handbook.md: 1 chunk.")]
    assert answers.asked == []


async def test_a_message_not_for_the_bot_is_left_alone() -> None:
    answers, channel = FakeAnswers(), Channel()
    await pipeline(answers).handle(message("lunch?"), channel, addressed=False)
    assert answers.asked == [] and channel.replies == []


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (RuntimeError("vector index 0xdeadbeef exploded"), ANSWER_FAILED),
        (LorekeeperError("You have used today's tokens.", reason="quota"), "You have used"),
    ],
)
async def test_errors_become_words_a_user_may_read(error: Exception, said: str) -> None:
    channel = Channel()
    await pipeline(FakeAnswers(error=error)).handle(message("why?"), channel, addressed=True)
    (name, text), *_ = channel.endings()
    assert name == "fail" and said in str(text) and "0xdeadbeef" not in str(text)


async def test_an_upload_that_crashes_names_its_file() -> None:
    channel = Channel()
    uploads = FakeUploads(error=RuntimeError("parser segfault"))
    await pipeline(FakeAnswers(), uploads).handle(
        message("", files=(HANDBOOK,)), channel, addressed=True, files=channel
    )
    assert channel.endings() == [("fail", UPLOAD_FAILED.format(name="handbook.md"))]


async def test_the_cap_lets_one_answer_run_and_the_rest_wait() -> None:
    release = asyncio.Event()
    answers, channel = FakeAnswers(release=release), Channel()
    pipe = pipeline(answers, concurrency=1)
    work = [
        asyncio.create_task(pipe.handle(message(q), channel, addressed=True))
        for q in ("one?", "two?", "three?")
    ]
    await until(lambda: pipe.in_flight == 3 and bool(answers.asked))
    assert answers.asked == ["one?"]  # the others wait for a slot
    release.set()
    await asyncio.gather(*work)
    assert answers.peak == 1 and sorted(answers.asked) == ["one?", "three?", "two?"]
    assert pipe.in_flight == 0


# --- drain(): shutdown waits for work in flight, then cancels what is late -------------------


async def test_drain_waits_for_work_that_finishes_in_time() -> None:
    release = asyncio.Event()
    channel = Channel()
    pipe = pipeline(FakeAnswers(release=release))
    task = asyncio.create_task(pipe.handle(message("slow?"), channel, addressed=True))
    await until(lambda: pipe.in_flight == 1)
    draining = asyncio.create_task(pipe.drain(within=30))
    await asyncio.sleep(0)
    assert not draining.done()  # it waits for the answer
    release.set()
    await draining
    assert task.done() and not task.cancelled()
    assert channel.endings() == [("finish", "answer to slow?")]


async def test_drain_cancels_work_still_running_at_the_deadline() -> None:
    channel = Channel()
    pipe = pipeline(FakeAnswers(release=asyncio.Event()))  # never released
    task = asyncio.create_task(pipe.handle(message("stuck?"), channel, addressed=True))
    await until(lambda: pipe.in_flight == 1)
    await pipe.drain(within=0.05)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pipe.in_flight == 0


async def test_drain_with_nothing_in_flight_returns_at_once() -> None:
    pipe = pipeline(FakeAnswers(), drain_seconds=3600)
    await asyncio.wait_for(pipe.drain(), timeout=5)
