"""Channels that answer themselves, through the Discord adapter (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.discord.driver import DiscordDriver
from tests.scenarios.autoanswer import AUTOANSWER, Scenario


@pytest.mark.parametrize("scenario", AUTOANSWER, ids=lambda s: s.__name__)
async def test_autoanswer(scenario: Scenario, discord_bot: DiscordDriver) -> None:
    await scenario(discord_bot)
