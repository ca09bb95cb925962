"""Runs the Slack adapter: Socket Mode with an app-level token, else the HTTP Events API."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from adapters.slack.app import EVENTS_PATH, SlackBot, SlackConfig
from adapters.slack.notify import SlackNotifier
from adapters.slack.privacy import SlackPrivacy
from bot.container import Container
from bot.settings import Settings
from core.conversation import ConversationPipeline, PipelineConfig
from core.errors import ConfigError
from core.types import Platform

log = logging.getLogger(__name__)


def slack_config(settings: Settings) -> SlackConfig:
    """Plain values for the adapter; a missing token or secret is a one-line ConfigError."""
    token = settings.secret("slack_bot_token")
    if not token:
        raise ConfigError("SLACK_BOT_TOKEN is not set (the xoxb- token from OAuth & Permissions).")
    secret = settings.secret("slack_signing_secret")
    if not settings.secret("slack_app_token") and not secret:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is not set: the HTTP Events API needs it "
            "(or set SLACK_APP_TOKEN to use Socket Mode)."
        )
    return SlackConfig(
        bot_token=token,
        signing_secret=secret,
        api_url=settings.slack_api_url,
        admin_ids=frozenset(settings.slack_admin_ids),
        max_upload_bytes=settings.max_upload_bytes,
        native_streaming=settings.slack_native_streaming,
    )


def build_slack_bot(container: Container, settings: Settings, **tuning: Any) -> SlackBot:
    """The adapter wired to the container (core asks it whether channels are private, and
    sends the gap digest's DMs through it); ``tuning`` overrides SlackConfig fields."""
    config = replace(slack_config(settings), **tuning)
    pipeline = ConversationPipeline(
        answers=container.answers,
        uploads=container.uploads,
        owners=container.owners,
        autoanswer=container.autoanswer,
        config=PipelineConfig(
            concurrency=config.concurrency, placeholder_after=config.placeholder_after
        ),
    )
    bot = SlackBot(
        conversations=pipeline, answers=container.answers, admin=container.admin, config=config
    )
    container.places.register(Platform.SLACK.value, SlackPrivacy(bot.client, bot.names))
    container.digest.register(Platform.SLACK.value, SlackNotifier(bot.client))
    return bot


async def run_slack(container: Container, settings: Settings, *, stop: asyncio.Event) -> None:
    """Serve Slack until ``stop`` is set, then stop taking events and finish work in flight."""
    bot = build_slack_bot(container, settings)
    await bot.start()
    try:
        app_token = settings.secret("slack_app_token")
        if app_token:
            await _socket_mode(bot, app_token, stop)
        else:
            await _http(bot, settings.slack_port, stop)
    finally:
        await bot.close()


async def _socket_mode(bot: SlackBot, app_token: str, stop: asyncio.Event) -> None:
    handler = AsyncSocketModeHandler(bot.app, app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    log.info("Slack: connected in Socket Mode")
    try:
        await stop.wait()
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]


async def _http(bot: SlackBot, port: int, stop: asyncio.Event) -> None:
    runner = web.AppRunner(bot.web_app(EVENTS_PATH), handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, "0.0.0.0", port).start()
        log.info("Slack: Events API on port %d at %s", port, EVENTS_PATH)
        await stop.wait()
    finally:
        await runner.cleanup()
