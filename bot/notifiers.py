"""Direct messages for a digest run by hand (`lorekeeper jobs run gap-digest`), outside the
running bot: a Slack Web API client and a Discord REST client (no gateway), from the
settings' tokens. The running bot registers its own clients instead (the platform runners)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from bot import process
from bot.settings import Settings
from core.digest import GapDigest
from core.types import Platform


@asynccontextmanager
async def platform_notifiers(settings: Settings, digest: GapDigest) -> AsyncIterator[list[str]]:
    """Register a notifier for each platform with a token; yields the platforms' names."""
    platforms: list[str] = []
    async with AsyncExitStack() as stack:
        slack_token = settings.secret("slack_bot_token")
        if slack_token:
            from slack_sdk.web.async_client import AsyncWebClient

            from adapters.slack.notify import SlackNotifier

            client = AsyncWebClient(token=slack_token, base_url=settings.slack_api_url)
            digest.register(Platform.SLACK.value, SlackNotifier(client))
            platforms.append(Platform.SLACK.value)
        discord_token = settings.secret("discord_token")
        if discord_token:
            import discord

            from adapters.discord.notify import DiscordNotifier

            process.point_discord_at(settings.discord_api_url, settings.discord_gateway_url)
            rest = discord.Client(intents=discord.Intents.none())
            stack.push_async_callback(rest.close)
            await rest.login(discord_token)
            digest.register(Platform.DISCORD.value, DiscordNotifier(rest))
            platforms.append(Platform.DISCORD.value)
        yield platforms
