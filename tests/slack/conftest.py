"""Fixtures: the real core + the real bolt app over HTTP, against fake Slack and fake Groq."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bot.container import build
from bot.settings import Settings
from bot.slack_runner import build_slack_bot
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.fakes.slack_server import FakeSlack
from tests.scenarios.suite import pipeline_concurrency
from tests.slack.driver import SIGNING_SECRET, SlackDriver


def slack_settings(
    database_url: str, folder: Path, slack: FakeSlack, groq: FakeGroq, **extra: Any
) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "MILVUS_URI": str(folder / "milvus.db"),
        "LOREKEEPER_DATA_DIR": str(folder),
        "GROQ_API_KEY": "gsk_test_key",
        "GROQ_BASE_URL": groq.base_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
    }
    return Settings(_env_file=None, **(values | extra))  # type: ignore[call-arg]


@asynccontextmanager
async def running_bot(
    database_url: str,
    folder: Path,
    embedder: Any,
    *,
    settings: dict[str, Any] | None = None,
    middlewares: list[Any] | None = None,
    tuning: dict[str, Any] | None = None,
    **groq_options: Any,
) -> AsyncIterator[SlackDriver]:
    """The whole bot serving the Events API on 127.0.0.1:0; yields a driver for it."""
    groq_options.setdefault("responder", relevant_quoting_responder)
    async with FakeGroq(**groq_options) as groq, FakeSlack() as slack:
        config = slack_settings(database_url, folder, slack, groq, **(settings or {}))
        container = await build(config, embedder=embedder)
        bot = build_slack_bot(container, config, **(tuning or {}))
        await bot.start()
        app = bot.web_app()
        app.middlewares.extend(middlewares or [])
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=1024).start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession() as http:
                yield SlackDriver(
                    container=container,
                    bot=bot,
                    slack=slack,
                    groq=groq,
                    url=f"http://127.0.0.1:{port}/slack/events",
                    http=http,
                )
        finally:
            await runner.cleanup()
            await bot.close()
            await container.close()


@pytest.fixture
async def slack_driver(request, database_url, tmp_path, embedder) -> AsyncIterator[SlackDriver]:
    """Parametrized over SQLite and PostgreSQL (through ``database_url``); a scenario's
    pipeline is built with the concurrency it asks for."""
    cap = pipeline_concurrency(request)
    tuning = {"concurrency": cap} if cap is not None else None
    async with running_bot(database_url, tmp_path, embedder, tuning=tuning) as driver:
        yield driver


@pytest.fixture
async def sqlite_slack(sqlite_databases, tmp_path, embedder) -> AsyncIterator[SlackDriver]:
    """The same bot on SQLite only, for the adapter's own (non-scenario) tests."""
    url = sqlite_databases.create(tmp_path / "slack.db")
    async with running_bot(url, tmp_path, embedder) as driver:
        yield driver
