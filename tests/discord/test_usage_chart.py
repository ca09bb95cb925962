"""`/lore usage` on Discord: the chart is attached to the ephemeral reply that holds the table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.discord.render import CHART_FILENAME
from tests.discord.conftest import running_discord_bot
from tests.discord.driver import DiscordDriver
from tests.fakes.discord_server import EPHEMERAL
from tests.scenarios.suite import HANDBOOK


@pytest.fixture
async def bot(sqlite_url: str, tmp_path: Path, embedder: object) -> AsyncIterator[DiscordDriver]:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as driver:
        yield driver


async def answered_once(bot: DiscordDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    thread = await bot.mention("How are travel expenses reimbursed?", user="U1")
    assert (await bot.bot_messages(thread))[-1].sources


async def test_usage_chart_arrives_with_the_table(bot: DiscordDriver) -> None:
    await answered_once(bot)
    shown = await bot.command("usage 7d by user", user="Admin", admin=True)
    assert "Usage 7d by user" in shown and "requests" in shown and "total" in shown
    record = list(bot.fake.interactions.values())[-1]
    assert record.callbacks[0] == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert record.original is not None and "requests" in record.original["content"]
    [attachment] = record.original["attachments"]
    assert attachment["filename"] == CHART_FILENAME
    png = bot.fake.attachment_bytes(attachment)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000
    assert bot.fake.uploads == [{k: v for k, v in attachment.items() if k != "description"}]


async def test_no_chart_for_a_refusal_or_other_commands(bot: DiscordDriver) -> None:
    await answered_once(bot)
    refused = await bot.command("usage 7d by user", user="U2", admin=False)
    listed = await bot.command("namespace list", user="U2")
    assert "Only workspace admins" in refused and "general" in listed
    assert bot.fake.uploads == []
    assert all(not (r.original or {}).get("attachments") for r in bot.fake.interactions.values())
