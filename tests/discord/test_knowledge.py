"""Knowledge that grows from the team, through the Discord adapter (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.discord.driver import DiscordDriver
from tests.scenarios.knowledge import KNOWLEDGE, Scenario


@pytest.mark.parametrize("scenario", KNOWLEDGE, ids=lambda s: s.__name__)
async def test_knowledge(scenario: Scenario, discord_bot: DiscordDriver) -> None:
    await scenario(discord_bot)
