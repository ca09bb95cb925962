"""The weekly gap digest on Slack, through slack_sdk against the fake Slack: owners who ran
`/lore digest on` get one DM (conversations.open, chat.postMessage) with their namespaces'
refused questions; an owner who did not gets none; a failed DM leaves the others theirs and
is sent by the next run that week; nothing is sent twice in a week."""

from __future__ import annotations

from typing import Any

from core.jobs.lock import AdvisoryLock
from core.jobs.runner import JobRunner
from tests.fakes.slack_server import BOT_USER
from tests.slack.driver import SlackDriver, visible_text

ANA, BEN, CAT = "U0ANA", "U0BEN", "U0CAT"
BIKES = "Where do we park bikes at the new office?"
ROTA = "Who is on call for the billing service this weekend?"


async def _ask(bot: SlackDriver, text: str, *, channel: str) -> None:
    root = bot.slack.people_post(channel, f"<@{BOT_USER}> {text}", user="U3")
    await bot.send_event(dict(root, type="app_mention"))
    await bot.send_event(root)
    await bot.bot.idle()
    [said] = bot.slack.thread(channel, root["ts"])
    assert "couldn't find that" in visible_text(said), said


async def _own(bot: SlackDriver, namespace: str, owner: str, *, channel: str) -> None:
    assert "Created namespace" in await bot.command(f"namespace create {namespace}", admin=True)
    assert "now searches" in await bot.command(
        f"namespace bind {namespace}", channel=channel, admin=True
    )
    await bot.command("namespace list", user=owner)  # a person the bot knows
    said = await bot.command(f"namespace owner {namespace} <@{owner}>", admin=True)
    assert "now owns" in said, said


def dms_to(bot: SlackDriver, user: str) -> list[dict[str, Any]]:
    channel = bot.slack.dms.get(user)
    return [m for (c, _), m in bot.slack.messages.items() if channel and c == channel]


async def _run(bot: SlackDriver) -> dict[str, int]:
    run = await JobRunner(AdvisoryLock(bot.container.database.engine)).run(
        "gap-digest", bot.container.digest.run
    )
    assert run.status == "ok", run.summary()
    return dict(run.counts)


async def test_opted_in_owners_get_one_dm_a_week(slack_driver) -> None:
    bot = slack_driver
    await _own(bot, "team", ANA, channel="C1")
    await _own(bot, "ops", BEN, channel="C2")
    await _own(bot, "hr", CAT, channel="C1")  # CAT's namespace has a gap too, but no opt-in
    for owner in (ANA, BEN):
        said = await bot.command("digest on", user=owner)
        assert said.startswith("Your weekly digest is on"), said
    await _ask(bot, BIKES, channel="C1")
    await _ask(bot, ROTA, channel="C2")

    bot.slack.error("chat.postMessage", "channel_not_found")  # the first DM fails
    counts = await _run(bot)
    assert counts["digests_sent"] == 1 and counts["failed"] == 1, counts
    assert len(dms_to(bot, ANA)) + len(dms_to(bot, BEN)) == 1
    counts = await _run(bot)  # the same week: only the one that failed
    assert counts["digests_sent"] == 1 and counts["already_sent"] == 1, counts
    assert await _run(bot) == {
        "digests_sent": 0,
        "owners_without_gaps": 0,
        "already_sent": 2,
        "owners_unreachable": 0,
        "failed": 0,
    }

    [ana] = dms_to(bot, ANA)
    text = visible_text(ana)
    assert text.startswith("*Unanswered questions in team (7d)*"), text
    assert BIKES in text and ROTA not in text and "/lore digest off" in text
    assert "<@" not in text and "<!" not in text  # nothing in it notifies
    [ben] = dms_to(bot, BEN)
    assert ROTA in visible_text(ben) and BIKES not in visible_text(ben)
    assert CAT not in bot.slack.dms and dms_to(bot, CAT) == []
    opened = [c.params.get("users") for c in bot.slack.methods("conversations.open")]
    assert sorted(opened) == [ANA, BEN, BEN] or sorted(opened) == [ANA, ANA, BEN], opened
