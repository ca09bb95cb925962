"""Run the Discord bot on a built container until ``stop`` is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from adapters.discord.client import LoreClient
from adapters.discord.notify import DiscordNotifier
from bot.container import Container
from bot.settings import Settings
from core.conversation import ConversationPipeline, PipelineConfig
from core.errors import ConfigError
from core.types import Platform

log = logging.getLogger(__name__)


def build_discord_client(container: Container, settings: Settings) -> LoreClient:
    """The client, with the settings' server and admin role (``bot.process`` points
    discord.py at the settings' REST and gateway addresses)."""
    return discord_client(
        container, guild_id=settings.discord_guild_id, admin_role=settings.discord_admin_role
    )


def discord_client(
    container: Container, *, pipeline_config: PipelineConfig | None = None, **options: Any
) -> LoreClient:
    """The client wired to the container: core asks it whether Discord channels are private
    and sends the gap digest's DMs through it.
    ``pipeline_config``: how many answers run at once (default: core's)."""
    pipeline = ConversationPipeline(
        answers=container.answers,
        uploads=container.uploads,
        owners=container.owners,
        autoanswer=container.autoanswer,
        config=pipeline_config,
    )
    client = LoreClient(
        conversations=pipeline, answers=container.answers, admin=container.admin, **options
    )
    container.places.register(Platform.DISCORD.value, client.privacy)
    container.digest.register(Platform.DISCORD.value, DiscordNotifier(client))
    return client


async def run_discord(container: Container, settings: Settings, *, stop: asyncio.Event) -> None:
    """Connect, serve until ``stop`` is set (or the connection fails for good), then let
    running answers finish (up to core's drain budget) and close the client."""
    token = settings.secret("discord_token")
    if not token:
        raise ConfigError("DISCORD_TOKEN: required to run on Discord (see docs/discord.md)")
    if settings.tenancy == "organisation" and not settings.organisation_guilds:
        log.warning(
            "DISCORD_GUILD_IDS is not set: every Discord server that adds this bot shares the "
            "organisation's namespaces. List your servers' ids in DISCORD_GUILD_IDS (or set "
            "TENANCY=workspace to keep each server apart)."
        )
    client = build_discord_client(container, settings)
    async with client:
        runner = asyncio.create_task(client.start(token), name="discord-client")
        stopper = asyncio.create_task(stop.wait(), name="discord-stop")
        try:
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not runner.done():
                await client.drain()
                await client.close()
            with contextlib.suppress(asyncio.CancelledError):
                await runner  # re-raises a login or gateway failure
    log.info("discord client closed")
