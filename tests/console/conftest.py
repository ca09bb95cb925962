"""Fixtures: the real core behind the terminal chat's classes, with FakeGroq as the LLM."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.console.driver import ConsoleDriver
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.harness import BotHarness
from tests.scenarios.suite import pipeline_concurrency


@asynccontextmanager
async def running_terminal(
    database_url: str, folder: Path, embedder: object, *, concurrency: int | None = None
) -> AsyncIterator[ConsoleDriver]:
    """The real core (SQLite or PostgreSQL, milvus-lite, the real groq SDK against FakeGroq)
    and a ConsoleDriver over it (``concurrency``: the pipeline's cap, default core's)."""
    async with FakeGroq(responder=relevant_quoting_responder) as groq:
        harness = await BotHarness.start(
            database_url, folder, embedder=embedder, groq_base_url=groq.base_url
        )
        try:
            driver = ConsoleDriver(
                harness.container, groq, folder / "files", concurrency=concurrency
            )
            try:
                yield driver
            finally:
                await driver.close()
        finally:
            await harness.close()


@pytest.fixture
async def console_driver(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, embedder: object
) -> AsyncIterator[ConsoleDriver]:
    """Parametrized over SQLite and PostgreSQL (through ``database_url``)."""
    cap = pipeline_concurrency(request)
    async with running_terminal(database_url, tmp_path, embedder, concurrency=cap) as driver:
        yield driver
