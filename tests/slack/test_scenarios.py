"""The shared scenario suite, unchanged, through the Slack adapter (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.scenarios.suite import SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.__name__ for s in SCENARIOS])
async def test_scenario(scenario, slack_driver) -> None:
    await scenario(slack_driver)
    assert all(status == 200 for status in slack_driver.statuses)
