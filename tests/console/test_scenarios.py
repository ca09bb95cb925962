"""The shared scenario suite, unchanged, on the terminal chat (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.console.driver import ConsoleDriver
from tests.scenarios.suite import SCENARIOS, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_scenario(scenario: Scenario, console_driver: ConsoleDriver) -> None:
    await scenario(console_driver)
