"""What Discord says about places: whether a channel is private (core asks, and keeps the
answer for a while), and which servers a person shares with the bot (what their DMs read)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import discord

from adapters.discord.events import channel_privacy

log = logging.getLogger(__name__)

MEMBERSHIP_TTL = 600.0  # seconds a person's servers are reused
_LOOKUPS_AT_ONCE = 4
_MAX_PEOPLE = 10_000
_DM_WORKSPACE = "dm-"


class DiscordPrivacy:
    """``core.places.PrivacyChecker`` on Discord: a channel is private when ``@everyone`` may
    not view it (a thread: its parent; private threads and DMs always). Read from the gateway's
    cache, else from ``GET /channels/{id}``; None when neither can tell."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def is_private(self, workspace_id: str, channel_id: str) -> bool | None:
        if workspace_id.startswith(_DM_WORKSPACE):
            return True
        if not (workspace_id.isdigit() and channel_id.isdigit()):
            return None
        guild = self._client.get_guild(int(workspace_id))
        if guild is None:
            return None
        channel = guild.get_channel_or_thread(int(channel_id)) or await self._fetch(channel_id)
        if channel is None or getattr(channel, "guild", None) != guild:
            return None
        return channel_privacy(channel, guild=guild)

    async def _fetch(self, channel_id: str) -> Any:
        try:
            return await self._client.fetch_channel(int(channel_id))
        except (discord.HTTPException, discord.InvalidData) as exc:
            log.warning("channel %s could not be fetched: %s", channel_id, type(exc).__name__)
            return None


class SharedServers:
    """The servers a person shares with the bot, as workspace ids: a DM reads their public
    knowledge. Asked with ``GET /guilds/{id}/members/{user}`` (no privileged intent needed),
    remembered for ``ttl`` seconds."""

    def __init__(
        self,
        client: discord.Client,
        *,
        ttl: float = MEMBERSHIP_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._known: dict[int, tuple[float, tuple[str, ...]]] = {}

    async def of(self, user_id: int) -> tuple[str, ...]:
        """The ids of the servers where ``user_id`` is a member, in id order."""
        cached = self._known.get(user_id)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        guilds = sorted(self._client.guilds, key=lambda g: g.id)
        gate = asyncio.Semaphore(_LOOKUPS_AT_ONCE)

        async def member_of(guild: discord.Guild) -> bool | None:
            async with gate:
                return await _is_member(guild, user_id)

        found = await asyncio.gather(*(member_of(g) for g in guilds))
        shared = tuple(str(g.id) for g, yes in zip(guilds, found, strict=True) if yes)
        if None not in found:  # a failed lookup is asked again next time
            if len(self._known) >= _MAX_PEOPLE:
                self._known.clear()
            self._known[user_id] = (self._clock() + self._ttl, shared)
        return shared


async def _is_member(guild: discord.Guild, user_id: int) -> bool | None:
    try:
        await guild.fetch_member(user_id)
    except discord.NotFound:
        return False
    except discord.HTTPException as exc:
        log.warning("membership of %s in server %s unknown (%s)", user_id, guild.id, exc.status)
        return None
    return True
