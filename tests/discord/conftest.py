"""Fixtures: the real core behind the real discord.py, talking to FakeDiscord and FakeGroq."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.discord.driver import DiscordDriver, start_client, stop_client
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.groq_server import FakeGroq, Messages, quoting_responder
from tests.harness import BotHarness

_WORD = re.compile(r"[a-z0-9]{3,}")
_SOURCE_1 = re.compile(r"^\[1\] [^\n]*\n(.+?)(?:\n\n\[2\] |\n\nQuestion: )", re.S | re.M)


def answering_responder(messages: Messages) -> str:
    """quoting_responder, made to quote the sentence of source [1] that best matches the
    question, and to answer the condense prompt with the follow-up itself.

    Plain quoting_responder quotes the first sentence and answers the condense prompt with
    "The sources don't say.", so `follow_up_without_mention` cannot pass on any adapter.
    """
    content = str(
        next((m for m in reversed(messages) if m.get("role") == "user"), {}).get("content", "")
    )
    if "Standalone question:" in content:
        follow_up = re.search(r"Follow-up question:\s*(.+?)\n", content)
        return follow_up.group(1).strip() if follow_up else content
    source = _SOURCE_1.search(content)
    if source is None:
        return quoting_responder(messages)
    wanted = set(_WORD.findall(content.rsplit("Question:", 1)[-1].lower()))
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", source.group(1)) if s.strip()]
    best = max(sentences, key=lambda s: len(wanted & set(_WORD.findall(s.lower()))))
    return f"{best.rstrip('.')} [1]."


@pytest.fixture
async def discord_bot(
    database_url: str, tmp_path: Path, embedder: object
) -> AsyncIterator[DiscordDriver]:
    async with FakeGroq(responder=answering_responder) as groq, FakeDiscord() as fake:
        harness = await BotHarness.start(
            database_url, tmp_path, embedder=embedder, groq_base_url=groq.base_url
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
async def sqlite_url(sqlite_databases: object, tmp_path: Path) -> str:
    """One SQLite database, for adapter tests whose subject is not the database."""
    return sqlite_databases.create(tmp_path / "test.db")  # type: ignore[attr-defined]
