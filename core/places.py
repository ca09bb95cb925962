"""Who may read what: the namespaces a place searches, and which places are private.

A place is a channel (with its threads) or a DM. Every document lives in a namespace: a shared
one that admins manage, or the conversation namespace of the one channel or DM it was dropped in.

- A channel reads its bound namespaces (``general`` when it has none) and its own files.
- A DM reads the public knowledge of its workspaces (``general`` and every namespace bound to
  at least one public channel) and its own files; never a namespace bound only to private
  channels, never another conversation's files.
- A DM beside a channel (Slack's assistant panel, where the platform says which channel its
  author is viewing) reads what that channel reads, and its own files: a private channel's
  knowledge only while its member is looking at it.

Privacy comes from the platform: adapters say it with an event when they know it for free, and
register a ``PrivacyChecker`` that core asks when a stored answer is missing or older than
``ttl``. A channel whose privacy cannot be learnt counts as private.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from core.db.namespaces import DEFAULT_NAMESPACE
from core.db.records import ChannelRecord, NamespaceRecord, WorkspaceRecord
from core.db.types import utcnow

log = logging.getLogger(__name__)

PRIVACY_TTL = timedelta(minutes=10)
READABLE_TTL = 30.0  # seconds a place's namespaces are reused (this process sees its own
# changes at once: the knowledge store's generation moves)
_REFRESH_AT_ONCE = 8


class PrivacyChecker(Protocol):
    """A platform's answer to "is this channel private?" (adapters implement it)."""

    async def is_private(self, workspace_id: str, channel_id: str) -> bool | None:
        """True or False as the platform says now; None when it cannot tell."""
        ...


@dataclass(frozen=True, slots=True)
class Place:
    """Where a question or command comes from, as core's rows. ``owner`` owns the knowledge
    read here (the organisation's workspace, or with per-workspace tenancy ``workspace``);
    a DM reads the public knowledge of ``dm_owners``."""

    workspace: WorkspaceRecord
    channel: ChannelRecord
    is_direct: bool = False
    owner: WorkspaceRecord | None = None  # None: ``workspace``
    dm_owners: tuple[WorkspaceRecord, ...] = ()
    viewing: Place | None = None  # a DM beside this channel reads what it reads

    @property
    def knowledge(self) -> WorkspaceRecord:
        """The workspace whose namespaces this place reads and manages."""
        return self.owner or self.workspace


class Places:
    """Privacy of channels (stored, refreshed through the platforms) and what places read."""

    def __init__(
        self,
        identity: IdentityStore,
        knowledge: KnowledgeStore,
        *,
        ttl: timedelta = PRIVACY_TTL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._identity = identity
        self._knowledge = knowledge
        self._ttl = ttl
        self._clock = clock
        self._checkers: dict[str, PrivacyChecker] = {}
        # (place key) -> (expiry, store generation, namespaces)
        self._readable: dict[tuple[object, ...], tuple[float, int, list[NamespaceRecord]]] = {}

    def register(self, platform: str, checker: PrivacyChecker) -> None:
        """Ask ``checker`` about the channels of ``platform`` from now on."""
        self._checkers[platform] = checker

    # --- privacy ----------------------------------------------------------------------

    async def note(self, channel: ChannelRecord, is_private: bool | None) -> ChannelRecord:
        """Record what an event said of its channel's privacy (written when it changed or the
        stored answer is stale; None says nothing)."""
        if is_private is None:
            return channel
        now = self._clock()
        if channel.is_private == is_private and self._fresh(channel, now):
            return channel
        await self._identity.set_privacy(channel.id, is_private, checked_at=now)
        self._readable.clear()
        return _with_privacy(channel, is_private, now)

    async def is_private(self, channel: ChannelRecord) -> bool:
        """Whether the channel is private (asking the platform when the stored answer is
        missing or stale); True when nobody can tell."""
        fresh = await self.refresh(channel)
        return fresh.is_private is not False

    async def refresh(self, channel: ChannelRecord) -> ChannelRecord:
        """The channel with its privacy as the platform says now (when the stored answer is
        missing or stale)."""
        now = self._clock()
        if self._fresh(channel, now):
            return channel
        workspace = await self._identity.workspace_by_id(channel.workspace_id)
        checker = self._checkers.get(workspace.platform) if workspace else None
        if workspace is None or checker is None:
            return channel
        try:
            found = await checker.is_private(workspace.external_id, channel.external_id)
        except Exception:
            log.warning("privacy of channel %s could not be checked", channel.external_id)
            found = None
        if found != channel.is_private or channel.privacy_checked_at is None:
            self._readable.clear()
        await self._identity.set_privacy(channel.id, found, checked_at=now)
        return _with_privacy(channel, found, now)

    def _fresh(self, channel: ChannelRecord, now: datetime) -> bool:
        checked = channel.privacy_checked_at
        return checked is not None and now - checked < self._ttl

    # --- what a place reads -----------------------------------------------------------

    async def readable(self, place: Place) -> list[NamespaceRecord]:
        """The namespaces answered from in ``place``: the shared ones (a channel's upload
        namespace first), then the place's own files."""
        if place.viewing is not None:
            return await self._beside(place, place.viewing)
        generation = self._knowledge.generation
        key = _place_key(place)
        cached = self._readable.get(key)
        if cached is not None and cached[0] > time.monotonic() and cached[1] == generation:
            return cached[2]
        shared = await (self._dm_shared(place) if place.is_direct else self._bound(place))
        own = await self._knowledge.conversation_namespace(place.channel.id)
        found = [*shared, own] if own is not None else shared
        if len(self._readable) > 10_000:
            self._readable.clear()
        self._readable[key] = (time.monotonic() + READABLE_TTL, generation, found)
        return found

    async def _beside(self, place: Place, viewed: Place) -> list[NamespaceRecord]:
        seen = await self.readable(viewed)
        own = await self._knowledge.conversation_namespace(place.channel.id)
        if own is None or any(ns.id == own.id for ns in seen):
            return seen
        return [*seen, own]

    async def _bound(self, place: Place) -> list[NamespaceRecord]:
        bound = await self._knowledge.channel_namespaces(place.channel.id)
        if bound:
            return bound
        return [await self._knowledge.ensure_namespace(place.knowledge.id, DEFAULT_NAMESPACE)]

    async def _dm_shared(self, place: Place) -> list[NamespaceRecord]:
        out: list[NamespaceRecord] = []
        for owner in place.dm_owners or (place.knowledge,):
            out.extend(await self.public_namespaces(owner))
        return out

    async def public_namespaces(self, owner: WorkspaceRecord) -> list[NamespaceRecord]:
        """``general`` and the namespaces bound to at least one public channel, by name."""
        public = await self.public_namespace_ids(owner)
        general = await self._knowledge.ensure_namespace(owner.id, DEFAULT_NAMESPACE)
        rows = [ns for ns, _ in await self._knowledge.list_namespaces(owner.id)]
        return [ns for ns in rows if ns.id in public or ns.id == general.id]

    async def public_namespace_ids(self, owner: WorkspaceRecord) -> set[uuid.UUID]:
        """Namespaces of ``owner`` bound to at least one channel (of any of the workspaces
        that share them) that its platform says is public."""
        bindings = await self._knowledge.bindings(owner.id)
        channels = {ch.id: ch for _, ch in bindings}
        fresh = await self._refresh_all(list(channels.values()))
        return {ns_id for ns_id, ch in bindings if fresh[ch.id].is_private is False}

    async def _refresh_all(
        self, channels: Sequence[ChannelRecord]
    ) -> dict[uuid.UUID, ChannelRecord]:
        gate = asyncio.Semaphore(_REFRESH_AT_ONCE)

        async def one(channel: ChannelRecord) -> ChannelRecord:
            async with gate:
                return await self.refresh(channel)

        done = await asyncio.gather(*(one(ch) for ch in channels))
        return {ch.id: ch for ch in done}

    async def may_read(self, place: Place, namespace: NamespaceRecord) -> bool:
        return any(ns.id == namespace.id for ns in await self.readable(place))


def _with_privacy(channel: ChannelRecord, is_private: bool | None, at: datetime) -> ChannelRecord:
    return ChannelRecord(
        channel.id, channel.workspace_id, channel.external_id, channel.name, is_private, at
    )


def _place_key(place: Place) -> tuple[object, ...]:
    if place.is_direct:
        return ("dm", place.channel.id, *(w.id for w in place.dm_owners))
    return ("channel", place.channel.id, place.knowledge.id)
