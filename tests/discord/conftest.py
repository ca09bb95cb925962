"""Fixtures: the real core behind the real discord.py, talking to FakeDiscord and FakeGroq."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from core.conversation import PipelineConfig
from tests.discord.driver import DiscordDriver, start_client, stop_client
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.harness import BotHarness
from tests.scenarios.suite import pipeline_concurrency

SCENARIO_CHANNELS = ("C1", "C2", "C9")


@asynccontextmanager
async def running_discord_bot(
    database_url: str, folder: Path, embedder: object, *, concurrency: int | None = None
) -> AsyncIterator[DiscordDriver]:
    """The real core and discord.py client against FakeDiscord and FakeGroq (``concurrency``:
    the pipeline's cap on answers at once, default core's)."""
    config = PipelineConfig(concurrency=concurrency) if concurrency is not None else None
    async with (
        FakeGroq(responder=relevant_quoting_responder) as groq,
        FakeDiscord(channels=SCENARIO_CHANNELS) as fake,
    ):
        harness = await BotHarness.start(
            database_url, folder, embedder=embedder, groq_base_url=groq.base_url
        )
        try:
            client, task = await start_client(fake, harness.container, pipeline_config=config)
            try:
                yield DiscordDriver(fake, client, harness.container, groq)
            finally:
                await stop_client(client, task)
        finally:
            await harness.close()


@pytest.fixture
async def discord_bot(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, embedder: object
) -> AsyncIterator[DiscordDriver]:
    cap = pipeline_concurrency(request)
    async with running_discord_bot(database_url, tmp_path, embedder, concurrency=cap) as driver:
        yield driver


@pytest.fixture
async def sqlite_url(sqlite_databases: object, tmp_path: Path) -> str:
    """One SQLite database, for adapter tests whose subject is not the database."""
    return sqlite_databases.create(tmp_path / "test.db")  # type: ignore[attr-defined]
