"""Fixtures: the real core behind the real discord.py, talking to FakeDiscord and FakeGroq."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.discord.driver import DiscordDriver, start_client, stop_client
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.harness import BotHarness

SCENARIO_CHANNELS = ("C1", "C2", "C9")


@asynccontextmanager
async def running_discord_bot(
    database_url: str, folder: Path, embedder: object
) -> AsyncIterator[DiscordDriver]:
    """The real core and discord.py client against FakeDiscord and FakeGroq."""
    async with (
        FakeGroq(responder=relevant_quoting_responder) as groq,
        FakeDiscord(channels=SCENARIO_CHANNELS) as fake,
    ):
        harness = await BotHarness.start(
            database_url, folder, embedder=embedder, groq_base_url=groq.base_url
        )
        try:
            client, task = await start_client(fake, harness.container)
            try:
                yield DiscordDriver(fake, client, harness.container, groq)
            finally:
                await stop_client(client, task)
        finally:
            await harness.close()


@pytest.fixture
async def discord_bot(
    database_url: str, tmp_path: Path, embedder: object
) -> AsyncIterator[DiscordDriver]:
    async with running_discord_bot(database_url, tmp_path, embedder) as driver:
        yield driver


@pytest.fixture
async def sqlite_url(sqlite_databases: object, tmp_path: Path) -> str:
    """One SQLite database, for adapter tests whose subject is not the database."""
    return sqlite_databases.create(tmp_path / "test.db")  # type: ignore[attr-defined]
