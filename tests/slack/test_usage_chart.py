"""`/lore usage` on Slack: the table in the ephemeral response, the chart in the admin's DM."""

from __future__ import annotations

from adapters.slack.render import CHART_FAILED, CHART_SENT
from tests.scenarios.suite import HANDBOOK
from tests.slack.driver import SlackDriver

QUESTION = "How are travel expenses reimbursed?"


async def answered_once(bot: SlackDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    thread = await bot.mention(QUESTION, user="U1")
    [answer] = await bot.bot_messages(thread)
    assert answer.sources


async def test_usage_chart_is_uploaded_to_the_admins_dm(sqlite_slack) -> None:
    bot = sqlite_slack
    await answered_once(bot)
    shown = await bot.command("usage 7d by user", user="UADMIN", admin=True)
    assert "Usage 7d by user" in shown and "requests" in shown and "total" in shown
    assert CHART_SENT in shown
    [upload] = bot.slack.uploads
    assert upload.data.startswith(b"\x89PNG\r\n\x1a\n") and len(upload.data) > 1000
    assert upload.channel == bot.slack.dms["UADMIN"]
    assert upload.filename.endswith(".png")
    assert "usage 7d by user" in str(upload.initial_comment)
    [opened] = bot.slack.methods("conversations.open")
    assert opened.params["users"] == "UADMIN"
    # Nothing went into the channel where the command ran.
    assert not [m for (channel, _), m in bot.slack.messages.items() if m["thread_ts"] is None]


async def test_failed_upload_still_shows_the_table_and_non_admins_get_nothing(
    sqlite_slack,
) -> None:
    bot = sqlite_slack
    await answered_once(bot)
    refused = await bot.command("usage 7d by user", user="U2", admin=False)
    assert "Only workspace admins" in refused
    assert bot.slack.methods("files.getUploadURLExternal") == []
    bot.slack.error("files.completeUploadExternal", "missing_scope")
    shown = await bot.command("usage 7d by user", user="UADMIN", admin=True)
    assert "requests" in shown and "total" in shown
    assert CHART_FAILED in shown and CHART_SENT not in shown
    assert bot.slack.uploads == []
