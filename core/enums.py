"""The fixed vocabularies of core: statuses, answer modes, roles and usage operations.

Each member equals its string (``StrEnum``), which is what the database stores and what its
CHECK constraints name, so a value read back from a row compares equal to its member.
"""

from __future__ import annotations

import enum


class DocumentStatus(enum.StrEnum):
    """Where a document is in ingestion; only ``INDEXED`` documents are searched."""

    PENDING = "pending"
    PROCESSING = "processing"
    INDEXED = "indexed"
    FAILED = "failed"
    DELETED = "deleted"


class UploadStatus(enum.StrEnum):
    """Where one uploaded file is."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"


class AnswerMode(enum.StrEnum):
    """How an answer was made: by the model, quoted from the sources without it, an
    abstention, a refusal (rate, quota, workspace), or nothing for a repeated event."""

    LLM = "llm"
    EXTRACTIVE = "extractive"
    ABSTAIN = "abstain"
    REFUSED = "refused"
    DUPLICATE = "duplicate"


class MessageRole(enum.StrEnum):
    """Who said a message of a conversation (and of a prompt)."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class UserRole(enum.StrEnum):
    """What a person may do in the bot: ``ADMIN`` runs admin commands."""

    USER = "user"
    ADMIN = "admin"
    VIEWER = "viewer"


class UsageOperation(enum.StrEnum):
    """What a row of token usage paid for: an answer (``CHAT``), a follow-up made standalone
    (``CONDENSE``), a question rewritten in its documents' words after the evidence gate
    refused it (``REWRITE``), a question's embedding (``EMBEDDING``, one per answer, its
    searches together), or a file's (``INGEST``, counted against the upload allowance)."""

    CHAT = "chat"
    CONDENSE = "condense"
    REWRITE = "rewrite"
    EMBEDDING = "embedding"
    INGEST = "ingest"
