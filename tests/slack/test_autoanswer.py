"""Channels that answer themselves, through the Slack adapter (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from tests.scenarios.autoanswer import AUTOANSWER, Scenario
from tests.slack.driver import SlackDriver


@pytest.mark.parametrize("scenario", AUTOANSWER, ids=lambda s: s.__name__)
async def test_autoanswer(scenario: Scenario, slack_driver: SlackDriver) -> None:
    await scenario(slack_driver)
    assert all(status == 200 for status in slack_driver.statuses)


async def test_edits_broadcasts_and_bot_posts_are_never_answered_unasked(
    slack_driver: SlackDriver,
) -> None:
    bot = slack_driver
    await bot.upload("handbook.md", b"# Handbook\n\nEmployees receive 25 days of paid vacation.")
    assert "Autoanswer is on" in await bot.command("channel autoanswer on", admin=True)
    before = bot.platform_writes()
    question = "How many days of paid vacation do employees get?"
    edited = bot.message_event(question, user="U1", channel="C1")
    edited = {**edited, "subtype": "message_changed", "message": dict(edited)}
    from_a_bot = {**bot.message_event(question, user="U1", channel="C1"), "bot_id": "B9"}
    broadcast = bot.message_event(question, user="U1", channel="C1", thread_ts="1.000001")
    broadcast["subtype"] = "thread_broadcast"
    for event in (edited, from_a_bot, broadcast):
        await bot.send_event(event)
    await bot.bot.idle()
    assert bot.platform_writes() == before
