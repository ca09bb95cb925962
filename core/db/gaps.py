"""The questions a gap report reads: each with how it was answered and how it was voted."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from core.db.access import Database
from core.db.models import (
    AutoAnswerDecision,
    Channel,
    ChannelNamespace,
    Feedback,
    Message,
    Session,
    Workspace,
)
from core.enums import AnswerMode, MessageRole


@dataclass(frozen=True, slots=True)
class AskedQuestion:
    """A question and its answer's fate: the answer's mode, its 👍 and 👎, and where it was
    asked (platform ids of the workspace, channel and thread)."""

    id: uuid.UUID
    text: str
    asked_at: datetime
    mode: str
    ups: int
    downs: int
    platform: str
    workspace: str
    channel_id: uuid.UUID
    channel: str
    channel_name: str | None
    thread: str
    unasked: bool = False  # asked unmentioned in an autoanswer channel and left alone

    @property
    def refused(self) -> bool:
        """Abstained, or voted down more than up."""
        return self.mode == AnswerMode.ABSTAIN or self.downs > self.ups


_ANSWERED = (AnswerMode.LLM, AnswerMode.EXTRACTIVE)
ORG_PLATFORM = "org"  # core.organisation.ORG_PLATFORM: the owner of shared knowledge


class GapStore:
    """Reads questions with their answers (no writes: gaps are worked out when asked for)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def refused(
        self,
        *,
        since: datetime,
        until: datetime,
        workspace_id: uuid.UUID | None,
        channel_ids: Sequence[uuid.UUID] | None,
        limit: int,
    ) -> list[AskedQuestion]:
        """Questions asked in the window whose answer abstained or was voted down more than up,
        and those autoanswer left alone for want of knowledge (``unasked``), newest first.
        ``channel_ids`` None: every channel (of ``workspace_id``, if given)."""
        stmt, answer, votes = _questions(since, until, workspace_id, channel_ids)
        downs, ups = func.coalesce(votes.c.downs, 0), func.coalesce(votes.c.ups, 0)
        asked = await self._read(
            stmt.where(or_(answer.mode == AnswerMode.ABSTAIN, downs > ups)), limit
        )
        unasked = await self._read(left_alone(since, until, workspace_id, channel_ids), limit)
        return sorted((*asked, *unasked), key=lambda q: q.asked_at, reverse=True)[:limit]

    async def answered(
        self,
        *,
        since: datetime,
        workspace_id: uuid.UUID | None,
        channel_ids: Sequence[uuid.UUID] | None,
        limit: int,
    ) -> list[AskedQuestion]:
        """Questions asked since ``since`` that the bot answered (from the sources), newest
        first: what may settle a gap."""
        stmt, answer, _ = _questions(since, None, workspace_id, channel_ids)
        return await self._read(stmt.where(answer.mode.in_(_ANSWERED)), limit)

    async def _read(self, stmt: Select[Any], limit: int) -> list[AskedQuestion]:
        async with self._db.read() as conn:
            rows = await conn.execute(stmt.limit(limit))
            return [AskedQuestion(**r._mapping) for r in rows]

    async def channels_of(self, namespace_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        """The channels that search any of these namespaces."""
        stmt = select(ChannelNamespace.channel_id).where(
            ChannelNamespace.namespace_id.in_(list(namespace_ids))
        )
        async with self._db.read() as conn:
            return list((await conn.execute(stmt.distinct())).scalars())

    async def unbound_channels(self, owner_id: uuid.UUID) -> list[uuid.UUID]:
        """The channels (and DMs) bound to no namespace that read ``general`` of the workspace
        ``owner_id``: its own, or every workspace's when it is the organisation's."""
        bound = select(ChannelNamespace.channel_id)
        stmt = select(Channel.id).where(Channel.id.not_in(bound))
        async with self._db.read() as conn:
            platform = await conn.scalar(select(Workspace.platform).where(Workspace.id == owner_id))
            if platform != ORG_PLATFORM:
                stmt = stmt.where(Channel.workspace_id == owner_id)
            return list((await conn.execute(stmt)).scalars())


def _questions(
    since: datetime,
    until: datetime | None,
    workspace_id: uuid.UUID | None,
    channel_ids: Sequence[uuid.UUID] | None,
) -> tuple[Select[Any], Any, Any]:
    question, answer = aliased(Message), aliased(Message)
    votes = (
        select(
            Feedback.message_id,
            func.sum(case((Feedback.value > 0, 1), else_=0)).label("ups"),
            func.sum(case((Feedback.value < 0, 1), else_=0)).label("downs"),
        )
        .group_by(Feedback.message_id)
        .subquery()
    )
    where = [
        question.role == MessageRole.USER,
        answer.role == MessageRole.ASSISTANT,
        *_window(
            question.created_at,
            Session.workspace_id,
            Session.channel_id,
            since,
            until,
            workspace_id,
            channel_ids,
        ),
    ]
    stmt = (
        select(
            question.id.label("id"),
            question.content.label("text"),
            question.created_at.label("asked_at"),
            answer.mode.label("mode"),
            func.coalesce(votes.c.ups, 0).label("ups"),
            func.coalesce(votes.c.downs, 0).label("downs"),
            Workspace.platform.label("platform"),
            Workspace.external_id.label("workspace"),
            Channel.id.label("channel_id"),
            Channel.external_id.label("channel"),
            Channel.name.label("channel_name"),
            Session.thread_key.label("thread"),
        )
        .join(answer, answer.parent_id == question.id)
        .join(Session, Session.id == question.session_id)
        .join(Channel, Channel.id == Session.channel_id)
        .join(Workspace, Workspace.id == Session.workspace_id)
        .outerjoin(votes, votes.c.message_id == answer.id)
        .where(*where, answer.mode.is_not(None))
        .order_by(question.created_at.desc(), question.id)
    )
    return cast(Select[Any], stmt), answer, votes


def left_alone(
    since: datetime,
    until: datetime | None,
    workspace_id: uuid.UUID | None,
    channel_ids: Sequence[uuid.UUID] | None,
) -> Select[Any]:
    """The questions autoanswer left alone for want of knowledge in ``[since, until)``, newest
    first, with the columns of :class:`AskedQuestion` (``mode`` abstain, no votes,
    ``unasked`` true): what a gap report adds to the refused questions of ``messages``."""
    row = AutoAnswerDecision
    where = [
        row.question.is_not(None),
        *_window(
            row.created_at,
            Channel.workspace_id,
            row.channel_id,
            since,
            until,
            workspace_id,
            channel_ids,
        ),
    ]
    stmt = (
        select(
            row.id.label("id"),
            row.question.label("text"),
            row.created_at.label("asked_at"),
            literal(AnswerMode.ABSTAIN.value, String).label("mode"),
            literal(0, Integer).label("ups"),
            literal(0, Integer).label("downs"),
            Workspace.platform.label("platform"),
            Workspace.external_id.label("workspace"),
            Channel.id.label("channel_id"),
            Channel.external_id.label("channel"),
            Channel.name.label("channel_name"),
            func.coalesce(row.thread_key, "").label("thread"),
            literal(True, Boolean).label("unasked"),
        )
        .join(Channel, Channel.id == row.channel_id)
        .join(Workspace, Workspace.id == Channel.workspace_id)
        .where(*where)
        .order_by(row.created_at.desc(), row.id)
    )
    return cast(Select[Any], stmt)


def _window(
    stamp: Any,
    workspace: Any,
    channel: Any,
    since: datetime,
    until: datetime | None,
    workspace_id: uuid.UUID | None,
    channel_ids: Sequence[uuid.UUID] | None,
) -> list[ColumnElement[bool]]:
    """Rows stamped in ``[since, until)``, of ``workspace_id`` and ``channel_ids`` when given."""
    where: list[ColumnElement[bool]] = [stamp >= since]
    if until is not None:
        where.append(stamp < until)
    if workspace_id is not None:
        where.append(workspace == workspace_id)
    if channel_ids is not None:
        where.append(channel.in_(list(channel_ids)))
    return where
