"""The data model: typed SQLAlchemy 2 ORM, one schema for SQLite and PostgreSQL.

The schema is created only by the Alembic migrations in ``migrations/``; tests prove the two
do not drift.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.db.types import UTCDateTime, new_id, utcnow
from core.enums import DocumentStatus, UploadStatus, UserRole

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

COST = Numeric(18, 8)


def table(name: str) -> Table:
    """A table for Core inserts: one executemany per batch whatever keys are None (the ORM's
    bulk insert splits a batch into one statement per distinct key set)."""
    return Base.metadata.tables[name]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        uuid.UUID: Uuid(),
        dict[str, Any]: JSON(),
    }


def _pk() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid(), primary_key=True, default=new_id)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, nullable=False)


def _fk(target: str, ondelete: str, *, nullable: bool = False) -> Mapped[Any]:
    return mapped_column(ForeignKey(target, ondelete=ondelete), nullable=nullable)


# --- tenants and identities -------------------------------------------------------------


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[uuid.UUID] = _pk()
    name: Mapped[str] = mapped_column(String(64), unique=True)
    user_daily_tokens: Mapped[int | None] = mapped_column(BigInteger)
    workspace_daily_tokens: Mapped[int | None] = mapped_column(BigInteger)
    # tokens of uploaded files embedded per day: a separate allowance from questions'
    user_daily_upload_tokens: Mapped[int | None] = mapped_column(BigInteger)
    workspace_daily_upload_tokens: Mapped[int | None] = mapped_column(BigInteger)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("platform", "external_id"),)
    id: Mapped[uuid.UUID] = _pk()
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    plan_id: Mapped[uuid.UUID | None] = _fk("plans.id", "SET NULL", nullable=True)
    created_at: Mapped[datetime] = _created()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id"),
        CheckConstraint("role IN ('user', 'admin', 'viewer')", name="role"),
    )
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID] = _fk("workspaces.id", "CASCADE")
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=UserRole.USER)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    daily_token_limit: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Channel(Base):
    __tablename__ = "channels"
    __table_args__ = (UniqueConstraint("workspace_id", "external_id"),)
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID] = _fk("workspaces.id", "CASCADE")
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    # as the platform last said (NULL: never learnt, which counts as private)
    is_private: Mapped[bool | None] = mapped_column(Boolean)
    privacy_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = _created()


# --- knowledge ----------------------------------------------------------------------------


class Namespace(Base):
    __tablename__ = "namespaces"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID] = _fk("workspaces.id", "CASCADE")
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # set: the files dropped in this one channel (or DM), readable only there
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), nullable=True, unique=True
    )
    # who is asked about its gaps (a user of its workspace; may run `/lore gaps` for it)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = _created()


class ChannelNamespace(Base):
    __tablename__ = "channel_namespaces"
    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    namespace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # files dropped in the channel are indexed here (at most one per channel; none: the first
    # bound namespace by name)
    receives_uploads: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _created()


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("namespace_id", "file_hash"),
        Index("ix_documents_namespace_status", "namespace_id", "status"),
        Index("ix_documents_namespace_identity", "namespace_id", "identity_hash"),
        CheckConstraint(
            "status IN ('pending', 'processing', 'indexed', 'failed', 'deleted')", name="status"
        ),
    )
    id: Mapped[uuid.UUID] = _pk()
    namespace_id: Mapped[uuid.UUID] = _fk("namespaces.id", "CASCADE")
    title: Mapped[str] = mapped_column(String(512))
    source_url: Mapped[str | None] = mapped_column(Text)
    source_platform: Mapped[str | None] = mapped_column(String(16))
    source_author: Mapped[str | None] = mapped_column(String(255))
    file_hash: Mapped[str] = mapped_column(String(64))
    # sha256 of what makes a later file a new version of this one (see core/ingestion/versions)
    identity_hash: Mapped[str | None] = mapped_column(String(64))
    mime_type: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    token_count: Mapped[int] = mapped_column(Integer, default=0)
    session_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("sessions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    # where it was dropped (its session's channel and thread_key): kept here because retention
    # deletes the session, and the deletion of that thread or channel must still find it
    channel_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("channels.id", ondelete="SET NULL"), nullable=True, index=True
    )
    thread_key: Mapped[str | None] = mapped_column(String(128))
    # who dropped the file (only they or an admin replace it); the platform's ids of the file
    # and of the message that carried it, so a deletion on the platform finds it at any age
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    platform_file_id: Mapped[str | None] = mapped_column(String(128), index=True)
    platform_message_id: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = _created()
    indexed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Chunk(Base):
    __tablename__ = "chunks"
    __table_args__ = (UniqueConstraint("document_id", "chunk_index"),)
    id: Mapped[uuid.UUID] = _pk()
    document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer)
    content: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    start_offset: Mapped[int] = mapped_column(Integer)
    end_offset: Mapped[int] = mapped_column(Integer)
    page: Mapped[int | None] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(String(512))
    vector_id: Mapped[str | None] = mapped_column(String(64))
    # the vectors of the content's sentences (core.text.split_sentences), float16, in order
    sentence_vectors: Mapped[bytes | None] = mapped_column(LargeBinary)


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_status_completed", "status", "completed_at"),
        CheckConstraint(
            "status IN ('pending', 'processing', 'completed', 'failed')", name="status"
        ),
    )
    id: Mapped[uuid.UUID] = _pk()
    user_id: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", nullable=True)
    document_id: Mapped[uuid.UUID | None] = _fk("documents.id", "SET NULL", nullable=True)
    original_filename: Mapped[str] = mapped_column(String(512))
    platform_file_id: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    mime_type: Mapped[str | None] = mapped_column(String(128))
    stored_path: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=UploadStatus.PENDING)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# --- conversations ------------------------------------------------------------------------


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("channel_id", "thread_key"),
        Index("ix_sessions_active_last", "is_active", "last_activity_at"),
    )
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID] = _fk("workspaces.id", "CASCADE")
    channel_id: Mapped[uuid.UUID] = _fk("channels.id", "CASCADE")
    thread_key: Mapped[str] = mapped_column(String(128))
    title: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    last_activity_at: Mapped[datetime] = _created()
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_session_created", "session_id", "created_at"),
        Index("ix_messages_created_at", "created_at"),
        Index("ix_messages_user_created", "user_id", "created_at"),
        CheckConstraint("role IN ('user', 'assistant', 'system')", name="role"),
    )
    id: Mapped[uuid.UUID] = _pk()
    session_id: Mapped[uuid.UUID] = _fk("sessions.id", "CASCADE")
    user_id: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", nullable=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    platform_message_id: Mapped[str | None] = mapped_column(String(64))
    # indexed: deleting messages sets their replies' parent_id to NULL through this column
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True, index=True
    )
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    model: Mapped[str | None] = mapped_column(String(128))
    processing_time_ms: Mapped[int | None] = mapped_column(Integer)
    grounded: Mapped[bool | None] = mapped_column(Boolean)
    # an answer's AnswerMode (llm, extractive, abstain, refused); NULL for questions
    mode: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = _created()


class Citation(Base):
    __tablename__ = "citations"
    __table_args__ = (UniqueConstraint("message_id", "position"),)
    id: Mapped[uuid.UUID] = _pk()
    message_id: Mapped[uuid.UUID] = _fk("messages.id", "CASCADE")
    position: Mapped[int] = mapped_column(Integer)
    chunk_id: Mapped[uuid.UUID | None] = _fk("chunks.id", "SET NULL", nullable=True)
    document_id: Mapped[uuid.UUID | None] = _fk("documents.id", "SET NULL", nullable=True)
    title: Mapped[str] = mapped_column(String(512))
    source_url: Mapped[str | None] = mapped_column(Text)
    quoted_text: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id"),
        CheckConstraint("value IN (-1, 1)", name="value"),
    )
    id: Mapped[uuid.UUID] = _pk()
    message_id: Mapped[uuid.UUID] = _fk("messages.id", "CASCADE")
    user_id: Mapped[uuid.UUID] = _fk("users.id", "CASCADE")
    value: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class OwnerAsk(Base):
    """A thread whose question was put to a namespace owner (once per thread)."""

    __tablename__ = "owner_asks"
    id: Mapped[uuid.UUID] = _pk()
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sessions.id", ondelete="CASCADE"), unique=True
    )
    answer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True, index=True
    )
    owner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    asked_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True, index=True
    )
    asked_at: Mapped[datetime] = _created()
    # when the owner, answering in the thread, was offered "Save thread" (once)
    save_offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChannelAutoanswer(Base):
    """A channel where the bot answers top-level questions nobody addressed to it (``/lore
    channel autoanswer``); no row: off."""

    __tablename__ = "channel_autoanswer"
    channel_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = _created()


class AutoAnswerDecision(Base):
    """One unaddressed question judged in an autoanswer channel: answered or left alone, with
    the gate's estimate. The answered ones are the channel's rate limit. Only a question left
    alone because the sources did not answer it keeps its text and thread (a gap, like a
    refused question's messages, and deleted as messages are); an answered one is in
    ``messages``."""

    __tablename__ = "auto_answers"
    __table_args__ = (
        Index("ix_auto_answers_channel_created", "channel_id", "created_at"),
        Index("ix_auto_answers_created_at", "created_at"),
    )
    id: Mapped[uuid.UUID] = _pk()
    channel_id: Mapped[uuid.UUID] = _fk("channels.id", "CASCADE")
    answered: Mapped[bool] = mapped_column(Boolean)
    probability: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(16))
    question: Mapped[str | None] = mapped_column(Text)
    thread_key: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


class GapDigestSetting(Base):
    """A person's weekly gap digest: whether they want it, and the ISO week it was last sent
    (so a week's digest goes out once)."""

    __tablename__ = "gap_digests"
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    last_sent_week: Mapped[str | None] = mapped_column(String(10))  # "2026-W50"
    updated_at: Mapped[datetime] = _created()


# --- accounting ---------------------------------------------------------------------------


class _UsageColumns:
    """Columns shared by token_usage and its archive."""

    id: Mapped[uuid.UUID] = mapped_column(Uuid(), primary_key=True, default=new_id)
    operation: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(128))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    embedding_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(COST, default=Decimal(0))
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TokenUsage(_UsageColumns, Base):
    __tablename__ = "token_usage"
    __table_args__ = (
        Index("ix_token_usage_workspace_created", "workspace_id", "created_at"),
        Index("ix_token_usage_user_created", "user_id", "created_at"),
        Index("ix_token_usage_created_at", "created_at"),
        CheckConstraint(
            "operation IN ('chat', 'condense', 'rewrite', 'embedding', 'ingest')",
            name="operation",
        ),
    )
    workspace_id: Mapped[uuid.UUID] = _fk("workspaces.id", "CASCADE")
    user_id: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", nullable=True)
    channel_id: Mapped[uuid.UUID | None] = _fk("channels.id", "SET NULL", nullable=True)
    namespace_id: Mapped[uuid.UUID | None] = _fk("namespaces.id", "SET NULL", nullable=True)
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), nullable=True, index=True
    )


class TokenUsageArchive(_UsageColumns, Base):
    """Usage older than the retention window. No foreign keys: the archive outlives its rows."""

    __tablename__ = "token_usage_archive"
    __table_args__ = (
        Index("ix_token_usage_archive_workspace_created", "workspace_id", "created_at"),
    )
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid())
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    channel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    namespace_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    message_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())


class DailyUsage(Base):
    __tablename__ = "daily_usage"
    __table_args__ = (
        UniqueConstraint(
            "day",
            "workspace_id",
            "user_id",
            "channel_id",
            "namespace_id",
            "model",
            "operation",
            name="uq_daily_usage_key",
        ),
        Index("ix_daily_usage_workspace_day", "workspace_id", "day"),
    )
    id: Mapped[uuid.UUID] = _pk()
    day: Mapped[date] = mapped_column(Date)
    workspace_id: Mapped[uuid.UUID] = _fk("workspaces.id", "CASCADE")
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    channel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    namespace_id: Mapped[uuid.UUID | None] = mapped_column(Uuid())
    model: Mapped[str] = mapped_column(String(128), default="")
    operation: Mapped[str] = mapped_column(String(16), default="", server_default="")
    requests: Mapped[int] = mapped_column(Integer, default=0)  # answered questions
    calls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    embedding_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(COST, default=Decimal(0))


class ProcessedEvent(Base):
    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)
    id: Mapped[uuid.UUID] = _pk()
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # a claim: another delivery may take the event over once this passes uncompleted
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_workspace_created", "workspace_id", "created_at"),)
    id: Mapped[uuid.UUID] = _pk()
    workspace_id: Mapped[uuid.UUID | None] = _fk("workspaces.id", "SET NULL", nullable=True)
    user_id: Mapped[uuid.UUID | None] = _fk("users.id", "SET NULL", nullable=True)
    actor: Mapped[str] = mapped_column(String(128))
    command: Mapped[str] = mapped_column(String(64))
    arguments: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
