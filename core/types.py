"""Platform-neutral values that cross the seam between adapters and core."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from core.enums import AnswerMode


class Platform(enum.StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    CONSOLE = "console"


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """A file attached to a message. ``fetch`` is done by the adapter; core sees bytes."""

    file_id: str
    filename: str
    size: int
    mime_type: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A question or file drop, translated from a platform event by a pure adapter function."""

    platform: Platform
    workspace_id: str
    channel_id: str
    thread_id: str
    author_id: str
    text: str
    event_id: str
    received_at: datetime
    author_name: str | None = None
    channel_name: str | None = None
    workspace_name: str | None = None
    message_id: str | None = None
    files: tuple[IncomingFile, ...] = ()
    is_direct: bool = False
    # What the platform says of the place, when the adapter knows it without asking (None:
    # ask through the platform's PrivacyChecker; unknown counts as private).
    place_private: bool | None = None
    # The author is an admin of the workspace (adapters fill it where it matters: uploads).
    author_is_admin: bool = False
    # A DM reads the public knowledge of these workspaces (empty: the message's own); on
    # Discord, the servers the author shares with the bot.
    dm_workspaces: tuple[str, ...] = ()
    # A DM beside a channel (Slack's assistant panel): the channel of the same workspace that
    # the author is viewing, as the platform says. The DM then reads what that channel reads,
    # and its own files.
    viewing_channel_id: str | None = None


@dataclass(frozen=True, slots=True)
class Citation:
    """One numbered source of an answer, as a person can check it."""

    n: int
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    title: str
    quote: str
    source_url: str | None = None
    start: int | None = None
    end: int | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embedding_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    model: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What core hands back for a question; adapters render it."""

    text: str
    citations: tuple[Citation, ...] = ()
    abstained: bool = False
    grounded: bool = True
    mode: AnswerMode = AnswerMode.LLM
    notice: str | None = None
    namespaces: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    message_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    duplicate: bool = False
    # it abstained where a namespace owner may be asked: offer "Ask an owner"
    ask_owner: bool = False


@dataclass(frozen=True, slots=True)
class Progress:
    """A stage of ingestion: ``fraction`` in [0, 1]."""

    stage: str
    fraction: float
    detail: str = ""


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """What happened to one file, in words a chat can show."""

    filename: str
    ok: bool
    message: str
    chunks: int = 0
    duplicate: bool = False
    namespace: str | None = None
    replaced: int = 0  # older versions of the file that this upload deleted
    document_id: uuid.UUID | None = None
    # the file stayed in the conversation: the namespaces its uploader (or an admin) may
    # share it with from there, offered as buttons
    share_with: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SaveChoice:
    """One place a saved thread may go: ``value`` names it to core, ``label`` to people."""

    value: str
    label: str


@dataclass(frozen=True, slots=True)
class SaveChoices:
    """Where someone may save a thread, for the dialog an adapter shows: the ``choices`` in
    order, ``chosen`` (the value to preselect, None for none), or ``refusal``: words saying
    why they may save it nowhere; ``suggest``: with the refusal, they are a member who may
    suggest the save to the namespace's owner instead (``ConversationPipeline.suggest_save``)."""

    choices: tuple[SaveChoice, ...] = ()
    chosen: str | None = None
    refusal: str | None = None
    suggest: bool = False


class Status(Protocol):
    """How core says what it is doing while it works (the services take this)."""

    async def thinking(self, namespaces: Sequence[str]) -> None:
        """Say that a search has started (the placeholder)."""

    async def stream(self, text_so_far: str) -> None:
        """Show the answer text produced so far (adapters throttle edits)."""

    async def progress(self, progress: Progress) -> None:
        """Show a stage of file ingestion."""


class Reply(Status, Protocol):
    """One reply on a platform, as each adapter implements it: the status while core works,
    then exactly one ending (``finish``, ``done``, ``fail`` or ``discard``). The conversation
    pipeline calls it one call at a time."""

    async def finish(self, answer: Answer) -> None:
        """Show the answer in place of whatever was shown (more messages if it is long)."""

    async def done(self, outcome: UploadOutcome) -> None:
        """Show an upload's outcome (with its share buttons where the platform has them)."""

    async def fail(self, text: str) -> None:
        """Show ``text`` (plain words from core, possibly naming a file) as the ending."""

    async def discard(self) -> None:
        """Remove what was shown: there is nothing to say (a repeated delivery)."""
