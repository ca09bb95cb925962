"""Retention: old rows are deleted in small batches so answers keep flowing.

Defaults (``RetentionPolicy``): messages after 90 days, sessions without activity for 90 days
(``last_activity_at``), completed uploads after 30 days (the upload record and its stored
file, never the indexed document), token_usage after 365 days (copied to token_usage_archive
and deleted in the same transaction, batch by batch), processed_events after 7 days.
Autoanswer decisions (``auto_answers``) go with the messages, as a question left alone there
keeps its text; an answered one, which the autoanswer rate limit counts, not before
``RetentionPolicy.auto_answer_window``. Documents stay until someone deletes them.

Per-namespace overrides live in ``namespaces.config``:

- ``{"retention_days": N}`` applies to the messages, sessions and autoanswer decisions of
  every channel that searches the namespace;
- ``{"upload_retention_days": N}`` applies to completed uploads whose document is in it.

When a channel searches several namespaces with overrides, the shortest period wins: an
override is a promise not to keep data longer than that. Channels and uploads that no
override reaches keep the defaults.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, or_, select

from core.db.access import Database
from core.db.models import (
    AutoAnswerDecision,
    ChannelNamespace,
    Document,
    Message,
    Namespace,
    ProcessedEvent,
    Session,
    TokenUsage,
    TokenUsageArchive,
    Upload,
)
from core.db.records import RETENTION_KEY
from core.enums import UploadStatus
from core.jobs.clock import Clock, system_clock

log = logging.getLogger(__name__)

UPLOAD_RETENTION_KEY = "upload_retention_days"
_ARCHIVE_COLUMNS = tuple(c.name for c in TokenUsageArchive.__table__.columns)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long rows are kept (days) and how deletes are paced."""

    message_days: int = 90
    session_days: int = 90
    upload_days: int = 30
    token_usage_days: int = 365
    processed_event_days: int = 7
    # the longest autoanswer rate window (AUTOANSWER_RATE_LIMIT, 10 minutes by default): an
    # answered decision is kept this long at least, however short the messages' period
    auto_answer_window: timedelta = timedelta(days=1)
    batch_size: int = 1000
    pause_ratio: float = 1.0
    """After each batch, sleep this many times the batch's own duration (0: no pause).

    On SQLite a batch holds the single write lock; the pause lets waiting answers in. The
    defaults (1,000 rows, pause as long as the batch) keep the answer path's p99 under 2x
    its idle value while retention runs (bench/jobs.py)."""


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """What one run removed."""

    processed_events: int = 0
    token_usage_archived: int = 0
    messages: int = 0
    sessions: int = 0
    uploads: int = 0
    files: int = 0
    auto_answers: int = 0

    def counts(self) -> dict[str, int]:
        return asdict(self)


def _override(config: dict[str, Any] | None, key: str) -> int | None:
    value = (config or {}).get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        log.warning("ignoring namespaces.config %s=%r: not a positive whole number", key, value)
        return None
    return value


def _groups(days_by_id: dict[uuid.UUID, int]) -> dict[int, list[uuid.UUID]]:
    out: dict[int, list[uuid.UUID]] = {}
    for key, days in days_by_id.items():
        out.setdefault(days, []).append(key)
    return out


class Retention:
    """Deletes what the policy no longer keeps; each batch is its own short transaction."""

    def __init__(
        self,
        db: Database,
        *,
        policy: RetentionPolicy | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._db = db
        self._policy = policy or RetentionPolicy()
        self._clock = clock

    async def run(self) -> RetentionReport:
        """One full pass over every table the policy covers."""
        events = await self.purge_processed_events()
        archived = await self.archive_token_usage()
        channel_days, namespace_days = await self._overrides()
        messages = await self.purge_messages(channel_days)
        sessions = await self.purge_sessions(channel_days)
        uploads, files = await self.purge_uploads(namespace_days)
        decisions = await self.purge_auto_answers(channel_days)
        return RetentionReport(events, archived, messages, sessions, uploads, files, decisions)

    async def _pause(self, started: float) -> None:
        """Yield to other work between batches (always at least one loop turn)."""
        await asyncio.sleep((time.perf_counter() - started) * self._policy.pause_ratio)

    def _cutoff(self, days: int) -> Any:
        return self._clock() - timedelta(days=days)

    async def _overrides(self) -> tuple[dict[int, list[uuid.UUID]], dict[int, list[uuid.UUID]]]:
        """(days -> channel ids, days -> namespace ids) for namespaces with an override."""
        async with self._db.session() as db:
            spaces = (await db.execute(select(Namespace.id, Namespace.config))).all()
            bindings = (
                await db.execute(select(ChannelNamespace.channel_id, ChannelNamespace.namespace_id))
            ).all()
        chat = {ns: d for ns, cfg in spaces if (d := _override(cfg, RETENTION_KEY)) is not None}
        files = {
            ns: d for ns, cfg in spaces if (d := _override(cfg, UPLOAD_RETENTION_KEY)) is not None
        }
        channels: dict[uuid.UUID, int] = {}
        for channel_id, namespace_id in bindings:
            if namespace_id in chat:
                days = chat[namespace_id]
                channels[channel_id] = min(days, channels.get(channel_id, days))
        return _groups(channels), _groups(files)

    async def _delete_batches(self, model: Any, where: Sequence[ColumnElement[bool]]) -> int:
        """Delete matching rows ``batch_size`` at a time, one transaction per batch."""
        size, total = self._policy.batch_size, 0
        while True:
            started = time.perf_counter()
            batch = select(model.id).where(*where).limit(size).scalar_subquery()
            stmt = delete(model).where(model.id.in_(batch))
            async with self._db.session() as db, db.begin():
                result = await (await db.connection()).execute(stmt)
            total += result.rowcount
            if result.rowcount < size:
                return total
            await self._pause(started)

    async def purge_processed_events(self) -> int:
        cutoff = self._cutoff(self._policy.processed_event_days)
        return await self._delete_batches(ProcessedEvent, [ProcessedEvent.received_at < cutoff])

    async def archive_token_usage(self) -> int:
        """Move token_usage past its window into token_usage_archive, batch by batch."""
        cutoff = self._cutoff(self._policy.token_usage_days)
        size, total = self._policy.batch_size, 0
        source = TokenUsage.__table__.c
        while True:
            started = time.perf_counter()
            async with self._db.session() as db, db.begin():
                conn = await db.connection()
                ids = (
                    (
                        await conn.execute(
                            select(TokenUsage.id).where(TokenUsage.created_at < cutoff).limit(size)
                        )
                    )
                    .scalars()
                    .all()
                )
                if ids:
                    copy = select(*(source[c] for c in _ARCHIVE_COLUMNS)).where(
                        TokenUsage.id.in_(ids)
                    )
                    await conn.execute(
                        insert(TokenUsageArchive).from_select(list(_ARCHIVE_COLUMNS), copy)
                    )
                    await conn.execute(delete(TokenUsage).where(TokenUsage.id.in_(ids)))
            total += len(ids)
            if len(ids) < size:
                return total
            await self._pause(started)

    async def purge_messages(self, channel_days: dict[int, list[uuid.UUID]] | None = None) -> int:
        """Messages older than the policy, or than their channel's namespace override."""
        return await self._by_channel(
            Message, Message.created_at, self._policy.message_days, channel_days or {}
        )

    async def purge_sessions(self, channel_days: dict[int, list[uuid.UUID]] | None = None) -> int:
        """Sessions without activity for the period (their remaining messages go with them)."""
        return await self._by_channel(
            Session, Session.last_activity_at, self._policy.session_days, channel_days or {}
        )

    async def purge_auto_answers(
        self, channel_days: dict[int, list[uuid.UUID]] | None = None
    ) -> int:
        """Autoanswer decisions as old as the messages deleted in their channel; an answered
        one only once the rate window that counts it is over too."""
        row = AutoAnswerDecision
        counted = self._clock() - self._policy.auto_answer_window
        return await self._by_channel(
            row,
            row.created_at,
            self._policy.message_days,
            channel_days or {},
            also=[or_(row.answered.is_(False), row.created_at < counted)],
        )

    async def _by_channel(
        self,
        model: Any,
        stamp: Any,
        default_days: int,
        groups: dict[int, list[uuid.UUID]],
        *,
        also: Sequence[ColumnElement[bool]] = (),
    ) -> int:
        overridden = [c for channels in groups.values() for c in channels]

        def in_channels(channels: list[uuid.UUID]) -> ColumnElement[bool]:
            if model is Session:
                return Session.channel_id.in_(channels)
            if model is AutoAnswerDecision:
                return AutoAnswerDecision.channel_id.in_(channels)
            return Message.session_id.in_(
                select(Session.id).where(Session.channel_id.in_(channels))
            )

        where = [stamp < self._cutoff(default_days), *also]
        if overridden:
            where.append(~in_channels(overridden))
        total = await self._delete_batches(model, where)
        for days, channels in groups.items():
            total += await self._delete_batches(
                model, [stamp < self._cutoff(days), in_channels(channels), *also]
            )
        return total

    async def purge_uploads(
        self, namespace_days: dict[int, list[uuid.UUID]] | None = None
    ) -> tuple[int, int]:
        """Completed uploads past the period: their stored file, then their record."""
        groups = namespace_days or {}
        overridden = [n for spaces in groups.values() for n in spaces]

        def in_spaces(spaces: list[uuid.UUID]) -> ColumnElement[bool]:
            return Upload.document_id.in_(
                select(Document.id).where(Document.namespace_id.in_(spaces))
            )

        base = [Upload.status == UploadStatus.COMPLETED]
        default = [*base, Upload.completed_at < self._cutoff(self._policy.upload_days)]
        if overridden:
            default.append(Upload.document_id.is_(None) | ~in_spaces(overridden))
        rows, files = await self._upload_batches(default)
        for days, spaces in groups.items():
            more = await self._upload_batches(
                [*base, Upload.completed_at < self._cutoff(days), in_spaces(spaces)]
            )
            rows, files = rows + more[0], files + more[1]
        return rows, files

    async def _upload_batches(self, where: Sequence[ColumnElement[bool]]) -> tuple[int, int]:
        size, rows, files = self._policy.batch_size, 0, 0
        while True:
            started = time.perf_counter()
            async with self._db.session() as db:
                found = (
                    await db.execute(
                        select(Upload.id, Upload.stored_path).where(*where).limit(size)
                    )
                ).all()
            if not found:
                return rows, files
            paths = [p for _, p in found if p]
            files += await asyncio.to_thread(_remove_files, paths)
            ids = [upload_id for upload_id, _ in found]
            async with self._db.session() as db, db.begin():
                await (await db.connection()).execute(delete(Upload).where(Upload.id.in_(ids)))
            rows += len(ids)
            if len(found) < size:
                return rows, files
            await self._pause(started)


def _remove_files(paths: Sequence[str]) -> int:
    """Delete stored upload files; a missing file is already gone, other errors are logged."""
    removed = 0
    for raw in paths:
        path = Path(raw)
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
        except OSError:
            log.warning("could not delete stored upload %s", path, exc_info=True)
    return removed
