"""Direct messages on Discord: core's :class:`core.digest.Notifier` for Discord's people.

The user is fetched (REST, so it works for someone the gateway has not shown), their DM
channel opened, and the rich text sent as Markdown in messages of at most 2,000 characters,
with no mention allowed to ping.
"""

from __future__ import annotations

import discord

from adapters.discord import render
from core.commands.rich import RichText
from core.db.records import UserAddress


class DiscordNotifier:
    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def direct(self, to: UserAddress, body: RichText) -> None:
        """Send ``body`` to ``to`` in a DM (a refusal raises discord.HTTPException)."""
        if not to.user.isdigit():
            raise ValueError("not a Discord user id")
        user = self._client.get_user(int(to.user)) or await self._client.fetch_user(int(to.user))
        channel = user.dm_channel or await user.create_dm()
        for part in render.render_rich(body):
            await channel.send(part.content, allowed_mentions=discord.AllowedMentions.none())
