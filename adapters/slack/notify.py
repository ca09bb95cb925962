"""Direct messages on Slack: core's :class:`core.digest.Notifier` for Slack's people.

``conversations.open`` (scope ``im:write``) finds or opens the bot's DM with the person, then
``chat.postMessage`` posts the rich text as mrkdwn, escaped so that nothing in it notifies.
"""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import render
from core.admin import CommandResult
from core.commands.rich import RichText
from core.db.records import UserAddress


class SlackNotifier:
    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def direct(self, to: UserAddress, body: RichText) -> None:
        """Post ``body`` in the bot's DM with ``to`` (a Slack error raises SlackApiError)."""
        opened = await self._client.conversations_open(users=to.user)
        channel = str((opened.get("channel") or {}).get("id") or "")
        if not channel:
            raise RuntimeError("conversations.open returned no channel")
        message = render.command_response(CommandResult(body))
        await self._client.chat_postMessage(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
