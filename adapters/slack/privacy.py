"""Whether a Slack channel is private, as ``conversations.info`` says (core asks, and keeps
the answer for a while)."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.events import channel_is_private
from adapters.slack.names import SlackNames

log = logging.getLogger(__name__)


class SlackPrivacy:
    """``core.places.PrivacyChecker`` on Slack: ``is_private``, ``is_im`` and ``is_mpim`` of
    ``conversations.info`` (scopes channels:read, groups:read, im:read, mpim:read)."""

    def __init__(self, client: AsyncWebClient, names: SlackNames | None = None) -> None:
        self._client = client
        self._names = names

    async def is_private(self, workspace_id: str, channel_id: str) -> bool | None:
        try:
            response = await self._client.conversations_info(channel=channel_id)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else "unknown"
            log.warning("conversations.info for %s failed: %s", channel_id, error)
            return None
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("conversations.info for %s failed: %s", channel_id, type(exc).__name__)
            return None
        channel = response.get("channel") or {}
        if self._names is not None:
            self._names.learn_channel(channel_id, channel)
        return channel_is_private(channel)
