"""Platform-neutral values that cross the seam between adapters and core."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


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
    mode: str = "llm"  # "llm" | "extractive" | "abstain" | "refused"
    notice: str | None = None
    namespaces: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    message_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Progress:
    """A stage of ingestion: ``fraction`` in [0, 1]."""

    stage: str
    fraction: float
    detail: str = ""


class Reply(Protocol):
    """How core talks back while it works; each adapter implements it for its platform."""

    async def thinking(self, namespaces: Sequence[str]) -> None:
        """Say that a search has started (the placeholder)."""

    async def stream(self, text_so_far: str) -> None:
        """Show the answer text produced so far (adapters throttle edits)."""

    async def progress(self, progress: Progress) -> None:
        """Show a stage of file ingestion."""
