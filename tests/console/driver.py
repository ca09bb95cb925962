"""ConsoleDriver: the scenario suite's ChatDriver on the terminal chat's own classes.

Every question and file goes through :meth:`ConversationPipeline.handle` with the terminal's
:class:`ConsoleThread`, :class:`ConsoleReply` and :class:`LocalFiles`, as `lorekeeper chat`
sends them; what the bot shows is what those replies printed. Users, channels and DMs are
console messages with the scenario's ids.

A terminal has no slash command, no buttons and no platform to delete a file on; for those the
driver calls core as the other adapters do behind their commands and clicks: `/lore` through
:class:`AdminService` with the typed registry's text parser (rendered as plain text), votes
through ``AnswerService.feedback``, a share through the typed promotion command, a deletion
through ``UploadService.deleted_on_platform``. Which console channels are private is the
driver's to say: it registers a privacy checker for the console.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from adapters.console.chat import (
    WORKSPACE,
    ConsoleReply,
    ConsoleThread,
    LocalFiles,
    console_message,
)
from bot.container import Container
from core.admin import AdminCommand
from core.commands import parse_text, promotion
from core.conversation import ConversationPipeline, PipelineConfig
from core.types import IncomingFile, IncomingMessage, Platform
from tests.fakes.groq_server import FakeGroq
from tests.scenarios.driver import BotMessage, Thread

# a footnote of render_answer: "  [1] handbook.md <file:///…/handbook.md>"
_FOOTNOTE = re.compile(r"^  \[\d+\] (?P<title>.+?)(?: <[^<>]*>)?$", re.MULTILINE)


@dataclass
class Printed:
    """One reply of the bot: what it printed, and the ConsoleReply that printed it."""

    out: io.StringIO
    reply: ConsoleReply

    def shown(self) -> BotMessage:
        text = self.out.getvalue()
        _, _, notes = text.partition("\nSources:\n")
        answer = self.reply.answer
        return BotMessage(
            text=text,
            sources=[m["title"] for m in _FOOTNOTE.finditer(notes)],
            # a terminal has no buttons: an answer core stored can be voted on
            has_feedback_buttons=answer is not None and answer.message_id is not None,
        )


class RecordedThread(ConsoleThread):
    """The terminal's thread, each reply printed to a buffer of its own (the driver tells the
    bot's messages apart as a person reads them apart on a platform)."""

    def __init__(self, printed: list[Printed]) -> None:
        super().__init__(io.StringIO())
        self._printed = printed

    def reply(self, file: IncomingFile | None = None) -> ConsoleReply:
        out = io.StringIO()
        reply = ConsoleThread(out).reply(file)
        self._printed.append(Printed(out, reply))
        return reply


class ConsolePrivacy:
    """Core's PrivacyChecker for console channels: the ones the scenario made private."""

    def __init__(self) -> None:
        self.private: set[str] = set()

    async def is_private(self, workspace_id: str, channel_id: str) -> bool | None:
        return channel_id in self.private


@dataclass
class ConsoleDriver:
    """Implements tests.scenarios.driver.ChatDriver."""

    container: Container
    groq: FakeGroq
    folder: Path  # where "uploaded" files are written, as a user's files on disk
    concurrency: int | None = None
    printed: dict[Thread, list[Printed]] = field(default_factory=dict)
    files: dict[Thread, list[str]] = field(default_factory=dict)  # file ids (paths) per thread
    privacy: ConsolePrivacy = field(default_factory=ConsolePrivacy)
    _pipeline: ConversationPipeline = field(init=False)
    _uploads: itertools.count[int] = field(default_factory=itertools.count, init=False)

    def __post_init__(self) -> None:
        """The pipeline as bot.chat_commands.conversations builds it, with the cap asked for."""
        config = PipelineConfig()
        if self.concurrency is not None:
            config = PipelineConfig(concurrency=self.concurrency)
        self._pipeline = ConversationPipeline(
            answers=self.container.answers, uploads=self.container.uploads, config=config
        )
        self.container.places.register(Platform.CONSOLE.value, self.privacy)

    @property
    def conversations(self) -> ConversationPipeline:
        return self._pipeline

    async def close(self) -> None:
        await self.conversations.drain()

    # --- the terminal ------------------------------------------------------------------

    def _message(
        self,
        text: str,
        thread: Thread,
        *,
        user: str,
        files: tuple[IncomingFile, ...] = (),
        is_direct: bool = False,
    ) -> IncomingMessage:
        return console_message(
            text,
            channel=thread.channel,
            thread=thread.thread,
            files=files,
            author=user,
            is_direct=is_direct,
        )

    async def _send(
        self,
        message: IncomingMessage,
        thread: Thread,
        *,
        addressed: bool = True,
        files: LocalFiles | None = None,
    ) -> None:
        shown = RecordedThread(self.printed.setdefault(thread, []))
        await self.conversations.handle(message, shown, addressed=addressed, files=files)

    @staticmethod
    def _new_thread(channel: str) -> Thread:
        return Thread(channel, uuid.uuid4().hex[:12])

    # --- ChatDriver ----------------------------------------------------------------------

    async def mention(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        thread = self._new_thread(channel)
        await self._send(self._message(text, thread, user=user), thread)
        return thread

    async def say_in_thread(
        self, thread: Thread, text: str, *, user: str = "U1", mention: bool = False
    ) -> None:
        """Without ``mention``, a line for the bot only in a thread it answers in (as on the
        platforms; the terminal's own chat addresses every line)."""
        await self._send(self._message(text, thread, user=user), thread, addressed=mention)

    async def upload(
        self,
        filename: str,
        data: bytes,
        *,
        thread: Thread | None = None,
        user: str = "U1",
        channel: str = "C1",
        text: str | None = None,
    ) -> Thread:
        """`/upload PATH` of a file the user has on disk (the words: the line's text)."""
        where = thread or self._new_thread(channel)
        path = self.folder / f"upload-{next(self._uploads)}" / filename
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        resolved = path.resolve()
        file = IncomingFile(
            file_id=str(resolved), filename=filename, size=len(data), url=resolved.as_uri()
        )
        message = self._message(text or "", where, user=user, files=(file,))
        await self._send(message, where, files=LocalFiles())
        self.files.setdefault(where, []).append(file.file_id)
        return where

    async def command(
        self, text: str, *, user: str = "U1", channel: str = "C1", admin: bool = False
    ) -> str:
        """`/lore <text>` as core's typed registry reads it, shown as plain text."""
        result = await self.container.admin.execute(
            AdminCommand(
                platform=Platform.CONSOLE,
                workspace_id=WORKSPACE,
                channel_id=channel,
                user_id=user,
                request=parse_text(text),
                is_platform_admin=admin,
                event_id=uuid.uuid4().hex,
            )
        )
        return result.text

    async def click_feedback(self, thread: Thread, value: int, *, user: str = "U1") -> None:
        answered = [p.reply.answer for p in self.printed[thread] if p.reply.answer is not None]
        message_id = answered[-1].message_id
        assert message_id is not None
        await self.container.answers.feedback(
            platform=Platform.CONSOLE.value,
            workspace_id=WORKSPACE,
            user_id=user,
            message_id=message_id,
            value=value,
        )

    async def deliver_twice(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        thread = self._new_thread(channel)
        message = self._message(text, thread, user=user)
        await asyncio.gather(self._send(message, thread), self._send(message, thread))
        return thread

    async def bot_messages(self, thread: Thread) -> list[BotMessage]:
        """Every call above returns once the pipeline is done with it: nothing to wait for."""
        shown = [p.shown() for p in self.printed.get(thread, [])]
        return [m for m in shown if m.text]  # a discarded reply printed nothing

    def llm_calls(self) -> int:
        return len(self.groq.requests)

    # --- trust ---------------------------------------------------------------------------

    async def make_private(self, channel: str) -> None:
        self.privacy.private.add(channel)

    async def dm(self, text: str, *, user: str = "U1") -> Thread:
        thread = self._new_thread(f"D-{user}")
        await self._send(self._message(text, thread, user=user, is_direct=True), thread)
        return thread

    async def delete_upload(self, thread: Thread) -> None:
        await self.container.uploads.deleted_on_platform(
            Platform.CONSOLE.value, file_id=self.files[thread][-1]
        )

    async def click_share(self, thread: Thread, namespace: str, *, user: str = "U1") -> str:
        """The typed `/lore docs promote` a "Share with" button stands for, on the last file
        of ``thread``."""
        docs = await self.container.knowledge.documents_from_platform(
            Platform.CONSOLE.value, file_id=self.files[thread][-1]
        )
        assert len(docs) == 1, docs
        result = await self.container.admin.execute(
            AdminCommand(
                platform=Platform.CONSOLE,
                workspace_id=WORKSPACE,
                channel_id=thread.channel,
                user_id=user,
                request=promotion(docs[0].id, namespace),
                event_id=uuid.uuid4().hex,
            )
        )
        return result.text
