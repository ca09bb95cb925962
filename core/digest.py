"""The weekly gap digest: a direct message to each namespace owner who turned it on
(`/lore digest on`), listing the gap groups of the namespaces they own over the last week.

Each platform delivers through its :class:`Notifier` (registered by ``bot/`` with
:meth:`GapDigest.register`). Nothing is sent to an owner whose namespaces had no gaps. A
week's digest goes to a person once: the ISO week is recorded before the message is sent and
released when sending fails, so a failed message is tried again by a later run that week. One
owner's failure is logged and the others still get theirs.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from core.commands.gaps import render
from core.commands.rich import Code, RichText, line
from core.db.digests import DigestStore
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.records import NamespaceRecord, UserAddress
from core.db.types import utcnow
from core.gaps import GapReport, GapService

log = logging.getLogger(__name__)

PERIOD = timedelta(days=7)


class Notifier(Protocol):
    """Sends a person a direct message on their platform (the adapter renders and escapes
    the rich text, and lets nothing in it notify anyone)."""

    async def direct(self, to: UserAddress, body: RichText) -> None: ...


@dataclass
class LogNotifier:
    """A :class:`Notifier` that only logs (and keeps) what it would send."""

    sent: list[tuple[UserAddress, RichText]] = field(default_factory=list)

    async def direct(self, to: UserAddress, body: RichText) -> None:
        self.sent.append((to, body))
        log.info("gap digest for %s user %s: %d lines", to.platform, to.user, len(body.blocks))


def iso_week(moment: datetime) -> str:
    """``2026-W50``: the week a digest belongs to."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def digest_text(report: GapReport) -> RichText:
    """The message: the gap report of the owner's namespaces, and how to stop it."""
    footer = RichText((line("Turn this weekly message off with ", Code("/lore digest off"), "."),))
    return render(report, "7d") + footer


@dataclass
class _Counts:
    sent: int = 0
    without_gaps: int = 0
    already_sent: int = 0
    unreachable: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "digests_sent": self.sent,
            "owners_without_gaps": self.without_gaps,
            "already_sent": self.already_sent,
            "owners_unreachable": self.unreachable,
            "failed": self.failed,
        }


class GapDigest:
    """Sends every namespace owner who wants it a summary of their namespaces' gaps."""

    def __init__(
        self,
        *,
        gaps: GapService,
        knowledge: KnowledgeStore,
        identity: IdentityStore,
        digests: DigestStore,
        period: timedelta = PERIOD,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._gaps = gaps
        self._knowledge = knowledge
        self._identity = identity
        self._digests = digests
        self._notifiers: dict[str, Notifier] = {}
        self._period = period
        self._clock = clock

    def register(self, platform: str, notifier: Notifier) -> None:
        """Deliver the digests of ``platform``'s people through ``notifier``."""
        self._notifiers[platform] = notifier

    async def run(self) -> dict[str, int]:
        """One direct message per opted-in owner with gaps; the counts for the job log."""
        until = self._clock()
        week = iso_week(until)
        owned = await self._knowledge.owned_namespaces()
        wanted = await self._digests.subscribers()
        counts = _Counts()
        for owner_id in sorted(wanted & owned.keys()):
            try:
                await self._one(owner_id, owned[owner_id], until=until, week=week, counts=counts)
            except Exception:
                log.exception("gap digest to user %s failed", owner_id)
                counts.failed += 1
        return counts.as_dict()

    async def _one(
        self,
        owner_id: uuid.UUID,
        namespaces: list[NamespaceRecord],
        *,
        until: datetime,
        week: str,
        counts: _Counts,
    ) -> None:
        owner = await self._identity.address(owner_id)
        notifier = self._notifiers.get(owner.platform) if owner else None
        if owner is None or notifier is None:
            counts.unreachable += 1
            return
        report = await self._gaps.report(
            since=until - self._period, until=until, workspace_id=None, namespaces=namespaces
        )
        if not report.groups:
            counts.without_gaps += 1
            return
        if not await self._digests.claim_week(owner_id, week):
            counts.already_sent += 1
            return
        body = digest_text(report)
        try:
            await notifier.direct(owner, body)
        except Exception:
            await self._digests.release_week(owner_id, week)
            raise
        counts.sent += 1
        log.info("gap digest sent to %s user %s", owner.platform, owner.user)
