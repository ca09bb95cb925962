"""Threads whose question was put to a namespace owner: asked once per thread, and the owner
offered "Save thread" once when they answer there."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from core.db.access import Database
from core.db.models import Channel, Message, OwnerAsk, Session, User, Workspace
from core.db.statements import insert_ignore
from core.db.types import new_id, utcnow
from core.enums import MessageRole


@dataclass(frozen=True, slots=True)
class AnsweredIn:
    """Where an answer was given (platform ids) and the question it answered."""

    session_id: uuid.UUID
    platform: str
    workspace: str
    channel: str
    thread: str
    question: str


@dataclass(frozen=True, slots=True)
class AskedThread:
    """A thread whose owner was asked: the ask's id and the owner's platform user id."""

    id: uuid.UUID
    owner: str
    save_offered: bool


class OwnerStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def answered_in(self, answer_id: uuid.UUID) -> AnsweredIn | None:
        """The thread of an answer and the question just before it (None: no such answer)."""
        stmt = (
            select(
                Message.session_id,
                Message.created_at,
                Workspace.platform,
                Workspace.external_id.label("workspace"),
                Channel.external_id.label("channel"),
                Session.thread_key,
            )
            .join(Session, Session.id == Message.session_id)
            .join(Channel, Channel.id == Session.channel_id)
            .join(Workspace, Workspace.id == Session.workspace_id)
            .where(Message.id == answer_id, Message.role == MessageRole.ASSISTANT)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                return None
            question = (
                await conn.execute(
                    select(Message.content)
                    .where(
                        Message.session_id == row.session_id,
                        Message.role == MessageRole.USER,
                        Message.created_at <= row.created_at,
                    )
                    .order_by(Message.created_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
        return AnsweredIn(
            row.session_id,
            str(row.platform),
            str(row.workspace),
            str(row.channel),
            str(row.thread_key),
            str(question or ""),
        )

    async def claim(
        self,
        session_id: uuid.UUID,
        *,
        answer_id: uuid.UUID | None,
        owner_id: uuid.UUID,
        asked_by: uuid.UUID,
        save_offered: bool = False,
    ) -> bool:
        """Record that this thread's owner is asked (to answer, or with ``save_offered`` and
        no answer, to save it): False when it was asked already."""
        now = utcnow()
        values = {
            "id": new_id(),
            "session_id": session_id,
            "answer_id": answer_id,
            "owner_id": owner_id,
            "asked_by": asked_by,
            "asked_at": now,
            "save_offered_at": now if save_offered else None,
        }
        stmt = insert_ignore(self._db.dialect, OwnerAsk, ("session_id",))
        async with self._db.transaction() as conn:
            done = await conn.execute(stmt, values)
        return bool(done.rowcount == 1)

    async def was_asked(self, session_id: uuid.UUID) -> bool:
        async with self._db.read() as conn:
            found = await conn.execute(
                select(OwnerAsk.id).where(OwnerAsk.session_id == session_id).limit(1)
            )
            return found.first() is not None

    async def asked_thread(
        self, platform: str, workspace: str, channel: str, thread: str
    ) -> AskedThread | None:
        """The ask of this platform thread, if its owner was asked (nothing is created)."""
        stmt = (
            select(OwnerAsk.id, OwnerAsk.save_offered_at, User.external_id.label("owner"))
            .join(User, User.id == OwnerAsk.owner_id)
            .join(Session, Session.id == OwnerAsk.session_id)
            .join(Channel, Channel.id == Session.channel_id)
            .join(Workspace, Workspace.id == Session.workspace_id)
            .where(
                Workspace.platform == platform,
                Workspace.external_id == workspace,
                Channel.external_id == channel,
                Session.thread_key == thread,
            )
            .limit(1)
        )
        async with self._db.read() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        return AskedThread(row.id, str(row.owner), row.save_offered_at is not None)

    async def withdraw_suggestion(self, ask_id: uuid.UUID) -> None:
        """Forget a suggested save (an ask with no answer) that never reached the thread."""
        async with self._db.transaction() as conn:
            await conn.execute(
                delete(OwnerAsk).where(OwnerAsk.id == ask_id, OwnerAsk.answer_id.is_(None))
            )

    async def offer_save(self, ask_id: uuid.UUID) -> bool:
        """Mark the owner offered "Save thread": True the first time only."""
        stmt = (
            update(OwnerAsk)
            .where(OwnerAsk.id == ask_id, OwnerAsk.save_offered_at.is_(None))
            .values(save_offered_at=utcnow())
        )
        async with self._db.transaction() as conn:
            done = await conn.execute(stmt)
        return bool(done.rowcount == 1)
