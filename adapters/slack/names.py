"""People's and channels' names, as Slack gives them, for usage reports and audit rows.

Slack's message events carry ids only. ``users.info`` (scope users:read) and
``conversations.info`` (channels:read, groups:read) give the names; they are kept for an hour,
so a busy channel costs two calls an hour, and asked for at most ``timeout`` seconds: a name
is a nicety, an answer must never wait on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

TTL_SECONDS = 3600.0
MAX_NAMES = 10_000
_UNKNOWN = ""  # a lookup that failed: not asked again until the entry expires


def user_name(user: dict[str, Any]) -> str | None:
    """What Slack shows for a person: display name, else real name, else the handle."""
    profile = user.get("profile") or {}
    for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name")):
        if isinstance(name, str) and name.strip():
            return name.strip()[:255]
    name = user.get("name")
    return name[:255] if isinstance(name, str) and name else None


def channel_name(channel: dict[str, Any]) -> str | None:
    """A channel's name; None for a DM (which has none)."""
    if channel.get("is_im"):
        return None
    name = channel.get("name")
    return name[:255] if isinstance(name, str) and name else None


class SlackNames:
    """Names of users and channels by id, cached for ``ttl`` seconds."""

    def __init__(
        self, client: AsyncWebClient, *, ttl: float = TTL_SECONDS, timeout: float = 1.5
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._timeout = timeout
        self._names: OrderedDict[tuple[str, str], tuple[float, str]] = OrderedDict()

    def learn_user(self, user_id: str, user: dict[str, Any]) -> None:
        """Keep the name from a ``users.info`` answer fetched for another reason."""
        self._put(("user", user_id), user_name(user) or _UNKNOWN)

    def learn_channel(self, channel_id: str, channel: dict[str, Any]) -> None:
        """Keep the name from a ``conversations.info`` answer fetched for another reason."""
        self._put(("channel", channel_id), channel_name(channel) or _UNKNOWN)

    async def names(self, user_id: str, channel_id: str) -> tuple[str | None, str | None]:
        """(user name, channel name), each None when Slack could not say in time."""
        user, channel = await asyncio.gather(self.user(user_id), self.channel(channel_id))
        return user, channel

    async def user(self, user_id: str) -> str | None:
        """A person's name; None when Slack could not say in time."""
        key = ("user", user_id)
        if not user_id:
            return None
        if (known := self._get(key)) is not None:
            return known or None
        response = await self._ask("users.info", self._client.users_info(user=user_id))
        if response is not None:
            self.learn_user(user_id, response.get("user") or {})
        else:
            self._put(key, _UNKNOWN)
        return self._get(key) or None

    async def channel(self, channel_id: str) -> str | None:
        """A channel's name; None for a DM, or when Slack could not say in time."""
        key = ("channel", channel_id)
        if not channel_id:
            return None
        if (known := self._get(key)) is not None:
            return known or None
        call = self._client.conversations_info(channel=channel_id)
        response = await self._ask("conversations.info", call)
        if response is not None:
            self.learn_channel(channel_id, response.get("channel") or {})
        else:
            self._put(key, _UNKNOWN)
        return self._get(key) or None

    async def _ask(self, method: str, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, self._timeout)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "unknown"
            log.info("%s for a name failed: %s", method, error)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.info("%s for a name failed: %s", method, type(exc).__name__)
        return None

    def _get(self, key: tuple[str, str]) -> str | None:
        hit = self._names.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def _put(self, key: tuple[str, str], name: str) -> None:
        self._names[key] = (time.monotonic() + self._ttl, name)
        self._names.move_to_end(key)
        while len(self._names) > MAX_NAMES:
            self._names.popitem(last=False)
