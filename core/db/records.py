"""Plain values the stores hand back (never live ORM rows)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from core.enums import MessageRole, UploadStatus, UsageOperation

CONVERSATION_LABEL = "the files shared here"
# keys of namespaces.config (core/jobs/retention.py reads the retention ones)
RETENTION_KEY = "retention_days"
PROMPTS_KEY = "prompts"


@dataclass(frozen=True, slots=True)
class WorkspaceRecord:
    id: uuid.UUID
    platform: str
    external_id: str
    name: str | None
    plan_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: uuid.UUID
    workspace_id: uuid.UUID
    external_id: str
    display_name: str | None
    role: str
    is_active: bool
    daily_token_limit: int | None


@dataclass(frozen=True, slots=True)
class UserAddress:
    """A person as their platform knows them: the platform, the workspace's and the user's
    platform ids (enough to message them directly)."""

    platform: str
    workspace: str
    user: str


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    id: uuid.UUID
    workspace_id: uuid.UUID
    external_id: str
    name: str | None
    is_private: bool | None = None  # None: never learnt from the platform (counts as private)
    privacy_checked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: uuid.UUID
    workspace_id: uuid.UUID
    channel_id: uuid.UUID
    thread_key: str
    title: str | None
    created_at: datetime
    last_activity_at: datetime
    is_new: bool = False


@dataclass(frozen=True, slots=True)
class CitationInput:
    position: int
    title: str
    quoted_text: str
    chunk_id: uuid.UUID | None = None
    document_id: uuid.UUID | None = None
    source_url: str | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class MessageInput:
    session_id: uuid.UUID
    role: MessageRole
    content: str
    user_id: uuid.UUID | None = None
    platform_message_id: str | None = None
    parent_id: uuid.UUID | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    processing_time_ms: int | None = None
    grounded: bool | None = None
    created_at: datetime | None = None
    citations: tuple[CitationInput, ...] = ()
    mode: str | None = None  # an answer's AnswerMode


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: uuid.UUID
    session_id: uuid.UUID
    role: str
    content: str
    created_at: datetime
    user_id: uuid.UUID | None = None
    model: str | None = None
    grounded: bool | None = None
    citations: tuple[CitationInput, ...] = ()


@dataclass(frozen=True, slots=True)
class UsageInput:
    workspace_id: uuid.UUID
    operation: UsageOperation
    model: str | None = None
    user_id: uuid.UUID | None = None
    channel_id: uuid.UUID | None = None
    namespace_id: uuid.UUID | None = None
    message_id: uuid.UUID | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    embedding_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_ms: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    id: uuid.UUID
    workspace_id: uuid.UUID
    name: str
    description: str | None
    config: dict[str, Any] = field(default_factory=dict)
    channel_id: uuid.UUID | None = None  # set: one conversation's own files
    owner_id: uuid.UUID | None = None  # the user asked about its gaps

    @property
    def is_conversation(self) -> bool:
        return self.channel_id is not None

    @property
    def prompts(self) -> tuple[str, ...]:
        """The suggested prompts an admin set for it (``config["prompts"]``), in order."""
        found = self.config.get(PROMPTS_KEY)
        if not isinstance(found, list):
            return ()
        return tuple(p for p in found if isinstance(p, str) and p)

    @property
    def retention_days(self) -> int | None:
        """Days its channels' conversations are kept (``config["retention_days"]``), if set."""
        found = self.config.get(RETENTION_KEY)
        return found if isinstance(found, int) and not isinstance(found, bool) else None

    @property
    def label(self) -> str:
        """How people read the namespace's name ("the files shared here" for a conversation's)."""
        return CONVERSATION_LABEL if self.channel_id is not None else self.name


@dataclass(frozen=True, slots=True)
class DocumentInput:
    """A document version to store: the file's bytes (``file_hash``) in a namespace, and where
    it came from."""

    namespace_id: uuid.UUID
    file_hash: str
    title: str
    identity_hash: str | None = None  # what makes a later file a new version of this one
    source_url: str | None = None
    source_platform: str | None = None
    source_author: str | None = None
    mime_type: str | None = None
    size_bytes: int = 0
    session_id: uuid.UUID | None = None  # uploaded into this thread
    channel_id: uuid.UUID | None = None  # and where that is, for when the session is gone
    thread_key: str | None = None
    uploaded_by: uuid.UUID | None = None
    platform_file_id: str | None = None
    platform_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class UploadInput:
    """A file someone handed over, recorded before it is indexed."""

    original_filename: str
    user_id: uuid.UUID | None = None
    platform_file_id: str | None = None
    size_bytes: int = 0
    mime_type: str | None = None
    status: UploadStatus = UploadStatus.PROCESSING
    stored_path: str | None = None  # where its bytes are kept, if they are


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    id: uuid.UUID
    namespace_id: uuid.UUID
    title: str
    status: str
    file_hash: str
    chunk_count: int
    token_count: int
    created_at: datetime
    error: str | None = None
    source_url: str | None = None
    session_id: uuid.UUID | None = None
    indexed_at: datetime | None = None
    uploaded_by: uuid.UUID | None = None
    platform_file_id: str | None = None
    identity_hash: str | None = None
