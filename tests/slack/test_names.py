"""Usage reports name people and channels as Slack shows them (users.info and
conversations.info, cached), not by their ids."""

from __future__ import annotations

from sqlalchemy import select

from core.db.models import User
from core.db.types import utcnow
from core.reports import ReportService, window
from tests.scenarios.suite import HANDBOOK
from tests.slack.driver import SlackDriver


async def test_usage_shows_slack_names_and_ids_on_request(sqlite_slack: SlackDriver) -> None:
    bot = sqlite_slack
    bot.slack.set_user("U1")
    bot.slack.users["U1"]["profile"] = {"display_name": "ada", "real_name": "Ada Lovelace"}
    await bot.upload("handbook.md", HANDBOOK)
    await bot.mention("How are travel expenses reimbursed?")
    await bot.mention("How many vacation days do we get?")
    await bot.bot.idle()
    reports = ReportService(bot.container.database)
    since, until = window("today", utcnow())
    by_user = await reports.usage(None, since=since, until=until, by="user")
    assert "ada" in {r.key for r in by_user.rows}, by_user.rows
    assert sum(r.requests for r in by_user.rows) == 2  # two answered questions
    by_channel = await reports.usage(None, since=since, until=until, by="channel", ids=True)
    channel_keys = {r.key for r in by_channel.rows}
    assert any(k.startswith("#") and k.endswith("(C1)") for k in channel_keys), channel_keys
    # one users.info per person, not one per message
    assert len([c for c in bot.slack.methods("users.info") if c.params.get("user") == "U1"]) <= 2


async def test_a_command_names_its_user_as_events_do_not_by_the_legacy_handle(
    sqlite_slack: SlackDriver,
) -> None:
    """The slash-command payload's user_name is the old handle ("u1"); the person keeps the
    name users.info gives, so commands and mentions do not rename each other."""
    bot = sqlite_slack
    await bot.command("quota show", user="U1")
    async with bot.container.database.session() as db:
        names = (
            (await db.execute(select(User.display_name).where(User.external_id == "U1")))
            .scalars()
            .all()
        )
    assert names == ["User U1"]  # users.info's real_name in the fake, not the handle "u1"
