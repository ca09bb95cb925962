"""An errbot-style harness over the real core: send a message as a user, get the bot's reply.

    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    answer = await bot.say("how do I add Lorekeeper to Slack?")

Real SQLite/PostgreSQL (migrated), real milvus-lite, the real embedder; the LLM is either
absent (extractive answers) or the real groq SDK against a FakeGroq server.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.container import Container, build
from bot.settings import Settings
from core.admin import AdminCommand, CommandResult
from core.commands import parse_text
from core.retrieval.base import Embedder
from core.types import Answer, IncomingFile, IncomingMessage, Platform, Progress, UploadOutcome

_events = itertools.count(1)


@dataclass
class RecordingReply:
    """A Reply that remembers everything core told it."""

    placeholders: list[tuple[str, ...]] = field(default_factory=list)
    streamed: list[str] = field(default_factory=list)
    progress_events: list[Progress] = field(default_factory=list)

    async def thinking(self, namespaces: Sequence[str]) -> None:
        self.placeholders.append(tuple(namespaces))

    async def stream(self, text_so_far: str) -> None:
        self.streamed.append(text_so_far)

    async def progress(self, progress: Progress) -> None:
        self.progress_events.append(progress)


@dataclass
class BotHarness:
    container: Container
    platform: Platform = Platform.CONSOLE
    workspace: str = "W1"
    channel: str = "C1"
    user: str = "U1"
    last_reply: RecordingReply = field(default_factory=RecordingReply)

    @classmethod
    async def start(
        cls,
        database_url: str,
        folder: Path,
        *,
        embedder: Embedder,
        groq_base_url: str | None = None,
        **settings: object,
    ) -> BotHarness:
        values: dict[str, object] = {
            "DATABASE_URL": database_url,
            "MILVUS_URI": str(folder / "milvus.db"),
            "LOREKEEPER_DATA_DIR": str(folder),
        }
        if groq_base_url:
            values |= {"GROQ_API_KEY": "gsk_test_key", "GROQ_BASE_URL": groq_base_url}
        values |= settings
        container = await build(Settings(_env_file=None, **values), embedder=embedder)  # type: ignore[call-arg]
        return cls(container)

    async def close(self) -> None:
        await self.container.close()

    def message(
        self,
        text: str,
        *,
        thread: str = "T1",
        user: str | None = None,
        channel: str | None = None,
        workspace: str | None = None,
        event_id: str | None = None,
        files: tuple[IncomingFile, ...] = (),
        **place: Any,
    ) -> IncomingMessage:
        """``place``: IncomingMessage's other fields (is_direct, place_private, ...)."""
        return IncomingMessage(
            platform=self.platform,
            workspace_id=workspace or self.workspace,
            channel_id=channel or self.channel,
            thread_id=thread,
            author_id=user or self.user,
            text=text,
            event_id=event_id or f"ev-{next(_events)}",
            received_at=datetime.now(UTC),
            files=files,
            **place,
        )

    async def say(self, text: str, **where: object) -> Answer:
        """Ask as a user; returns core's Answer (the reply's events are in ``last_reply``)."""
        self.last_reply = RecordingReply()
        return await self.container.answers.answer(self.message(text, **where), self.last_reply)  # type: ignore[arg-type]

    async def upload(
        self, filename: str, data: bytes, *, file_id: str | None = None, **where: object
    ) -> UploadOutcome:
        self.last_reply = RecordingReply()
        file = IncomingFile(file_id=file_id or f"F-{filename}", filename=filename, size=len(data))
        message = self.message(f"(uploaded {filename})", files=(file,), **where)  # type: ignore[arg-type]
        return await self.container.uploads.ingest(message, file, data, self.last_reply)

    async def admin(
        self,
        text: str,
        *,
        is_admin: bool = True,
        user: str | None = None,
        channel: str | None = None,
        workspace: str | None = None,
        **place: Any,
    ) -> CommandResult:
        """`/lore <text>` (channels written ``#ID``); ``place``: AdminCommand's other fields
        (is_direct, place_private, ...)."""
        return await self.container.admin.execute(
            AdminCommand(
                platform=self.platform,
                workspace_id=workspace or self.workspace,
                channel_id=channel or self.channel,
                user_id=user or self.user,
                request=parse_text(text),
                is_platform_admin=is_admin,
                event_id=f"cmd-{next(_events)}",
                **place,
            )
        )
