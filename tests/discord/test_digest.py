"""The weekly gap digest on Discord, through discord.py against the fake Discord: owners who
ran `/lore digest on` get one DM (fetch user, create DM, send, no mention allowed) with their
namespaces' refused questions; an owner who did not gets none; a refused DM leaves the others
theirs and is sent by the next run that week; nothing is sent twice in a week."""

from __future__ import annotations

from core.jobs.lock import AdvisoryLock
from core.jobs.runner import JobRunner
from tests.discord.driver import DiscordDriver, PostedMessage, message_text
from tests.discord.test_trust import message_bodies

BIKES = "Where do we park bikes at the new office?"
ROTA = "Who is on call for the billing service this weekend?"


async def _own(bot: DiscordDriver, namespace: str, owner: str, *, channel: str) -> None:
    assert "Created namespace" in await bot.command(f"namespace create {namespace}", admin=True)
    assert "now searches" in await bot.command(
        f"namespace bind {namespace}", channel=channel, admin=True
    )
    await bot.command("namespace list", user=owner)  # a person the bot knows
    said = await bot.command(
        f"namespace owner {namespace} {bot.fake.user(owner)['id']}", admin=True
    )
    assert "now owns" in said, said


async def _ask(bot: DiscordDriver, text: str, *, channel: str) -> None:
    thread = await bot.mention(text, user="U3", channel=channel)
    assert "couldn't find that" in (await bot.bot_messages(thread))[-1].text


def dms_to(bot: DiscordDriver, name: str) -> list[PostedMessage]:
    if f"dm:{name}" not in bot.fake.channel_ids:
        return []
    return bot.fake.messages_in(bot.fake.dm_channel_id(name))


async def _run(bot: DiscordDriver) -> dict[str, int]:
    run = await JobRunner(AdvisoryLock(bot.container.database.engine)).run(
        "gap-digest", bot.container.digest.run
    )
    assert run.status == "ok", run.summary()
    return dict(run.counts)


async def test_opted_in_owners_get_one_dm_a_week(discord_bot) -> None:
    bot = discord_bot
    await _own(bot, "team", "Ana", channel="C1")
    await _own(bot, "ops", "Ben", channel="C2")
    await _own(bot, "hr", "Cat", channel="C1")  # Cat's namespace has a gap too, but no opt-in
    for owner in ("Ana", "Ben"):
        said = await bot.command("digest on", user=owner)
        assert said.startswith("Your weekly digest is on"), said
    await _ask(bot, BIKES, channel="C1")
    await _ask(bot, ROTA, channel="C2")

    bot.fake.refuse_dms.add("Ben")  # Ben's DMs are closed: 403, code 50007
    counts = await _run(bot)
    assert counts["digests_sent"] == 1 and counts["failed"] == 1, counts
    [ana] = dms_to(bot, "Ana")
    assert dms_to(bot, "Ben") == []
    text = message_text(ana)
    assert text.startswith("**Unanswered questions in team (7d)**"), text
    assert BIKES in text and ROTA not in text and "/lore digest off" in text

    bot.fake.refuse_dms.clear()
    counts = await _run(bot)  # the same week: only the one that failed
    assert counts["digests_sent"] == 1 and counts["already_sent"] == 1, counts
    [ben] = dms_to(bot, "Ben")
    assert ROTA in message_text(ben) and BIKES not in message_text(ben)
    assert (await _run(bot))["already_sent"] == 2
    assert len(dms_to(bot, "Ana")) == 1 and len(dms_to(bot, "Ben")) == 1
    assert dms_to(bot, "Cat") == []

    sent = [b for b in message_bodies(bot.fake) if BIKES in str(b.get("content"))]
    assert sent and all(b["allowed_mentions"]["parse"] == [] for b in sent), sent
    assert all(not b["allowed_mentions"].get("users") for b in sent)
