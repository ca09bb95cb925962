"""Messages with their citations, thread history and feedback."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.access import Database
from core.db.models import Feedback, Message, Session, Workspace, table
from core.db.records import CitationInput, MessageInput, MessageRecord, UsageInput
from core.db.statements import upsert
from core.db.types import new_id, new_ids, utcnow
from core.db.usage import usage_rows
from core.enums import MessageRole


def _message_values(item: MessageInput, message_id: uuid.UUID) -> dict[str, Any]:
    return {
        "id": message_id,
        "session_id": item.session_id,
        "user_id": item.user_id,
        "role": item.role,
        "content": item.content,
        "platform_message_id": item.platform_message_id,
        "parent_id": item.parent_id,
        "prompt_tokens": item.prompt_tokens,
        "completion_tokens": item.completion_tokens,
        "model": item.model,
        "processing_time_ms": item.processing_time_ms,
        "grounded": item.grounded,
        "mode": item.mode,
        "created_at": item.created_at or utcnow(),
    }


def _citation_values(message_id: uuid.UUID, c: CitationInput) -> dict[str, Any]:
    return {
        "id": new_id(),
        "message_id": message_id,
        "position": c.position,
        "chunk_id": c.chunk_id,
        "document_id": c.document_id,
        "title": c.title[:512],
        "source_url": c.source_url,
        "quoted_text": c.quoted_text,
        "score": c.score,
    }


# built once: every answered question runs these (building a statement costs more CPU than
# executing it on SQLite, and this runs on the event loop)
_INSERT_MESSAGES = insert(table("messages"))
_INSERT_CITATIONS = insert(table("citations"))
_INSERT_USAGE = insert(table("token_usage"))
_SESSIONS = table("sessions")
_TOUCH_SESSION = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("session_id"))
    .values(last_activity_at=bindparam("at", type_=_SESSIONS.c.last_activity_at.type))
)
_M = table("messages").c
_HISTORY = (
    select(
        _M.id, _M.session_id, _M.role, _M.content, _M.created_at, _M.user_id, _M.model, _M.grounded
    )
    .where(_M.session_id == bindparam("session_id"))
    .order_by(_M.created_at.desc(), _M.id.desc())
    .limit(bindparam("limit"))
)


_C = table("citations").c
_CITATIONS = (
    select(
        _C.position, _C.title, _C.quoted_text, _C.chunk_id, _C.document_id, _C.source_url, _C.score
    )
    .where(_C.message_id == bindparam("message_id"))
    .order_by(_C.position)
)
EXCHANGE_BATCH = 64  # answers committed in one transaction at most


@dataclass(frozen=True, slots=True)
class _ExchangeRows:
    ids: tuple[uuid.UUID, uuid.UUID]  # question, answer
    messages: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    usage: list[dict[str, Any]]
    touch: dict[str, Any]


def _exchange_rows(
    question: MessageInput, answer: MessageInput, usage: Sequence[UsageInput]
) -> _ExchangeRows:
    question_id, answer_id = new_ids(2)
    q_values = _message_values(question, question_id)
    a_values = _message_values(replace(answer, parent_id=question_id), answer_id)
    return _ExchangeRows(
        (question_id, answer_id),
        [q_values, a_values],  # question first
        [_citation_values(answer_id, c) for c in answer.citations],
        usage_rows([replace(u, message_id=answer_id) for u in usage]) if usage else [],
        {"session_id": answer.session_id, "at": a_values["created_at"]},
    )


async def _insert_exchanges(
    conn: AsyncConnection, rows: Sequence[_ExchangeRows]
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Every statement once, with the rows of all exchanges (executemany underneath)."""
    await conn.execute(_INSERT_MESSAGES, [m for r in rows for m in r.messages])
    if citations := [c for r in rows for c in r.citations]:
        await conn.execute(_INSERT_CITATIONS, citations)
    if usage := [u for r in rows for u in r.usage]:
        await conn.execute(_INSERT_USAGE, usage)
    await conn.execute(_TOUCH_SESSION, [r.touch for r in rows])
    return [r.ids for r in rows]


class ConversationStore:
    """Writes and reads the messages of sessions."""

    def __init__(self, db: Database) -> None:
        self._db = db
        # answers that finish while one is being written are committed together
        self._exchanges = db.group_commit(_insert_exchanges, max_batch=EXCHANGE_BATCH)

    async def add_message(self, item: MessageInput) -> MessageRecord:
        """Store one message and its citations in one transaction; bumps the session."""
        message_id = new_id()
        values = _message_values(item, message_id)
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_MESSAGES, [values])
            if item.citations:
                await conn.execute(
                    _INSERT_CITATIONS, [_citation_values(message_id, c) for c in item.citations]
                )
            await conn.execute(
                _TOUCH_SESSION, {"session_id": item.session_id, "at": values["created_at"]}
            )
        return MessageRecord(
            id=message_id,
            session_id=item.session_id,
            role=item.role,
            content=item.content,
            created_at=values["created_at"],
            user_id=item.user_id,
            model=item.model,
            grounded=item.grounded,
            citations=item.citations,
        )

    async def add_exchange(
        self, question: MessageInput, answer: MessageInput, usage: Sequence[UsageInput]
    ) -> tuple[uuid.UUID, uuid.UUID]:
        """A question, its answer (with citations) and the answer's token usage in one
        transaction; (question id, answer id). Group commit (``core.db.access``): a burst of
        answers shares one transaction, and one bad exchange fails alone."""
        return await self._exchanges.submit(_exchange_rows(question, answer, usage))

    async def add_messages(self, items: Sequence[MessageInput]) -> list[uuid.UUID]:
        """Bulk insert (imports, benchmarks): one transaction, executemany underneath."""
        ids = new_ids(len(items))
        rows = [_message_values(item, mid) for item, mid in zip(items, ids, strict=True)]
        cites = [
            _citation_values(mid, c)
            for item, mid in zip(items, ids, strict=True)
            for c in item.citations
        ]
        async with self._db.transaction() as conn:
            await conn.execute(_INSERT_MESSAGES, rows)
            if cites:
                await conn.execute(_INSERT_CITATIONS, cites)
        return ids

    async def history(self, session_id: uuid.UUID, *, limit: int = 10) -> list[MessageRecord]:
        """The last ``limit`` messages of a session, oldest first."""
        async with self._db.read() as conn:
            rows = await conn.execute(_HISTORY, {"session_id": session_id, "limit": limit})
            # the statement's columns are named as MessageRecord's fields
            out = [MessageRecord(**r._mapping) for r in rows]
        out.reverse()
        return out

    async def citations(self, message_id: uuid.UUID) -> list[CitationInput]:
        async with self._db.read() as conn:
            rows = await conn.execute(_CITATIONS, {"message_id": message_id})
            # the statement's columns are named as CitationInput's fields
            return [CitationInput(**r._mapping) for r in rows]

    async def nth_recent_question(
        self, user_id: uuid.UUID, *, n: int, since: datetime
    ) -> datetime | None:
        """When the user asked their ``n``-th newest question since ``since`` (None: they asked
        fewer): the rate limit lifts once that one is older than its window."""
        stmt = (
            select(Message.created_at)
            .where(
                Message.user_id == user_id,
                Message.role == MessageRole.USER,
                Message.created_at >= since,
            )
            .order_by(Message.created_at.desc())
            .limit(1)
            .offset(n - 1)
        )
        async with self._db.read() as conn:
            return (await conn.execute(stmt)).scalar_one_or_none()

    async def answer_workspace(self, message_id: uuid.UUID) -> tuple[str, str] | None:
        """(platform, workspace's platform id) of the session an answer belongs to; None when
        no answer has this id."""
        stmt = (
            select(Workspace.platform, Workspace.external_id)
            .join(Session, Session.workspace_id == Workspace.id)
            .join(Message, Message.session_id == Session.id)
            .where(Message.id == message_id, Message.role == MessageRole.ASSISTANT)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).first()
        return (str(row.platform), str(row.external_id)) if row is not None else None

    async def set_feedback(self, message_id: uuid.UUID, user_id: uuid.UUID, value: int) -> None:
        """One vote per user and message; a second vote replaces the first."""
        if value not in (-1, 1):
            raise ValueError("feedback is +1 or -1")
        now = utcnow()
        values = {
            "id": new_id(),
            "message_id": message_id,
            "user_id": user_id,
            "value": value,
            "created_at": now,
            "updated_at": now,
        }
        stmt = upsert(
            self._db.dialect,
            Feedback,
            ("message_id", "user_id"),
            update=("value", "updated_at"),
        )
        async with self._db.transaction() as conn:
            await conn.execute(stmt, values)

    async def feedback_totals(self, message_id: uuid.UUID) -> tuple[int, int]:
        """(up votes, down votes) for a message."""
        async with self._db.read() as conn:
            values = (
                (
                    await conn.execute(
                        select(Feedback.value).where(Feedback.message_id == message_id)
                    )
                )
                .scalars()
                .all()
            )
        return sum(1 for v in values if v > 0), sum(1 for v in values if v < 0)
