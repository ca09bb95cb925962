"""The shared scenario suite, unchanged, on the Discord adapter (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.discord.driver import DiscordDriver
from tests.scenarios.suite import SCENARIOS, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario(scenario: Scenario, discord_bot: DiscordDriver) -> None:
    await scenario(discord_bot)
