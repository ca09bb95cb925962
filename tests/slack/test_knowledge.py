"""Knowledge that grows from the team, through the Slack adapter (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.scenarios.knowledge import KNOWLEDGE, Scenario
from tests.slack.driver import SlackDriver


@pytest.mark.parametrize("scenario", KNOWLEDGE, ids=lambda s: s.__name__)
async def test_knowledge(scenario: Scenario, slack_driver: SlackDriver) -> None:
    await scenario(slack_driver)
    assert all(status == 200 for status in slack_driver.statuses)
