"""The platform-neutral face of a chat platform for the shared scenario suite.

Each adapter's tests implement :class:`ChatDriver` on top of the real SDK talking to a fake
platform server on 127.0.0.1 (the terminal's drives its classes directly); the scenarios in
``suite.py`` then run unchanged on Slack, Discord and the terminal, so the adapters cannot
drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import select

from bot.container import Container
from core.conversation import ConversationPipeline
from core.db.models import Document, Namespace


@dataclass(frozen=True)
class Thread:
    """Where a conversation lives on the platform (ids as the platform spells them)."""

    channel: str
    thread: str


@dataclass
class BotMessage:
    """A message the bot left in a thread, as the platform finally shows it."""

    text: str  # the visible text of the final version (all blocks / content + embeds)
    sources: list[str] = field(default_factory=list)  # source titles in citation order
    has_feedback_buttons: bool = False
    edits: int = 0  # how many times the message was edited after it was posted


class ChatDriver(Protocol):
    container: Container  # the real core behind the running bot (for database checks)

    @property
    def conversations(self) -> ConversationPipeline:
        """The pipeline the adapter hands its messages to (built with the driver's
        PipelineConfig)."""
        ...

    async def mention(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        """A top-level message mentioning the bot; returns the thread the bot answers in."""
        ...

    async def say_in_thread(
        self, thread: Thread, text: str, *, user: str = "U1", mention: bool = False
    ) -> None: ...

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
        """Share a file (into ``thread`` or as a new top-level message with a mention), with
        ``text`` as the words of its message (after the mention)."""
        ...

    async def command(
        self, text: str, *, user: str = "U1", channel: str = "C1", admin: bool = False
    ) -> str:
        """Run `/lore <text>`; returns what the user sees (the ephemeral response)."""
        ...

    async def click_feedback(self, thread: Thread, value: int, *, user: str = "U1") -> None:
        """Click 👍 (1) or 👎 (-1) on the bot's last answer in ``thread``."""
        ...

    async def deliver_twice(self, text: str, *, user: str = "U1", channel: str = "C1") -> Thread:
        """The platform delivers the same mention event twice (a retry)."""
        ...

    async def bot_messages(self, thread: Thread) -> list[BotMessage]:
        """Wait until the bot is idle, then return its messages in ``thread``, oldest first."""
        ...

    def llm_calls(self) -> int:
        """Chat-completion requests the fake Groq server received so far."""
        ...

    # --- trust: private places, DMs, ownership, deletion on the platform ----------------

    async def make_private(self, channel: str) -> None:
        """Make ``channel`` private on the platform (Slack: a private channel, whose id may
        still start with C; Discord: @everyone may not view it). The bot is in it."""
        ...

    async def dm(self, text: str, *, user: str = "U1") -> Thread:
        """A direct message to the bot; returns the thread the bot answers in."""
        ...

    async def delete_upload(self, thread: Thread) -> None:
        """Delete, on the platform, the last file shared in ``thread`` (Slack: the file;
        Discord: the message that carried it), and wait until the bot is idle."""
        ...

    async def click_share(self, thread: Thread, namespace: str, *, user: str = "U1") -> str:
        """Click the "Share with NAMESPACE" button under the bot's last "Indexed …" message in
        ``thread``; returns what the clicker is shown."""
        ...


async def saved_in(bot: ChatDriver) -> list[tuple[str, str]]:
    """(document title, namespace name) of every document, in order."""
    async with bot.container.database.session() as db:
        rows = await db.execute(
            select(Document.title, Namespace.name).join(
                Namespace, Namespace.id == Document.namespace_id
            )
        )
        return sorted((t, n) for t, n in rows.all())
