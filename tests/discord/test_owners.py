"""Owners who get asked, on Discord: "Ask an owner" under an abstention mentions the namespace
owner in the thread once (pinging only them); the owner's answer gets a "Save thread" button."""

from __future__ import annotations

from core.owners import ALREADY_ASKED, SUGGESTED
from tests.discord.driver import DiscordDriver, PostedMessage, custom_ids, message_text
from tests.discord.test_trust import message_bodies

QUESTION = "Where do we park bikes at the new office?"


async def owned_team(bot: DiscordDriver, *, owner: bool = True) -> str:
    assert "Created namespace" in await bot.command("namespace create team", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    owner_id = bot.fake.user("Ana")["id"]
    if owner:
        await bot.command("namespace list", user="Ana")  # a person the bot knows
        said = await bot.command(f"namespace owner team {owner_id}", admin=True)
        assert "now owns" in said, said
    return str(owner_id)


def last_with(bot: DiscordDriver, thread: int, prefix: str) -> PostedMessage | None:
    found = [
        m for m in bot.fake.messages_in(thread) if any(i.startswith(prefix) for i in custom_ids(m))
    ]
    return found[-1] if found else None


async def click(bot: DiscordDriver, message: PostedMessage, prefix: str, *, user: str) -> list[str]:
    custom_id = next(i for i in custom_ids(message) if i.startswith(prefix))
    record = await bot.fake.interact(bot.fake.click_payload(message, custom_id, user=user))
    await bot.settle()
    shown = [record.original or {}, *record.followups]
    return [message_text(PostedMessage(m)) for m in shown if m]


async def test_an_owner_is_asked_once_and_saves_their_answer(discord_bot) -> None:
    bot = discord_bot
    owner = await owned_team(bot)
    thread = await bot.mention(QUESTION, user="U3")
    tid = int(thread.thread)
    abstained = last_with(bot, tid, "lore:owner:")
    assert abstained is not None and "couldn't find that" in message_text(abstained)

    await click(bot, abstained, "lore:owner:", user="U3")
    mentions = [m for m in bot.fake.messages_in(tid) if f"<@{owner}>" in message_text(m)]
    assert len(mentions) == 1 and QUESTION in message_text(mentions[0])
    body = next(b for b in message_bodies(bot.fake) if QUESTION in str(b.get("content")))
    assert body["allowed_mentions"]["parse"] == []
    assert body["allowed_mentions"]["users"] == [int(owner)]

    said = await click(bot, abstained, "lore:owner:", user="U2")
    assert any(ALREADY_ASKED.format(namespace="team") in s for s in said), said
    assert len([m for m in bot.fake.messages_in(tid) if f"<@{owner}>" in message_text(m)]) == 1

    await bot.say_in_thread(thread, "Bikes go in the basement rack, level -1.", user="Ana")
    await bot.settle()
    offer = last_with(bot, tid, "lore:osave:")
    assert offer is not None and message_text(offer).startswith(f"<@{owner}>")
    offered = next(b for b in message_bodies(bot.fake) if "lore:osave:" in str(b.get("components")))
    assert offered["allowed_mentions"]["users"] == [int(owner)]
    said = await click(bot, offer, "lore:osave:", user="Ana")
    assert any("into team" in s for s in said), said

    again = await bot.mention(QUESTION, user="U2")
    answer = (await bot.bot_messages(again))[-1]
    assert "couldn't find" not in answer.text
    assert answer.sources and "Where do we park bikes" in answer.sources[0]


async def test_without_an_owner_there_is_no_button(discord_bot) -> None:
    bot = discord_bot
    await owned_team(bot, owner=False)
    thread = await bot.mention(QUESTION, user="U3")
    assert "couldn't find that" in (await bot.bot_messages(thread))[-1].text
    assert last_with(bot, int(thread.thread), "lore:owner:") is None


async def test_a_members_suggestion_pings_the_owner_alone(discord_bot) -> None:
    bot = discord_bot
    owner = await owned_team(bot)
    thread = await bot.mention(QUESTION, user="U3")
    await bot.say_in_thread(thread, "Bikes go in the basement rack, level -1.", user="U4")
    said = await bot.member_saves(thread, user="U4")
    assert said == SUGGESTED.format(namespace="team"), said
    body = next(b for b in message_bodies(bot.fake) if "suggests saving" in str(b.get("content")))
    assert str(body["content"]).startswith(f"<@{owner}>")
    assert body["allowed_mentions"]["parse"] == []
    assert body["allowed_mentions"]["users"] == [int(owner)]
    assert last_with(bot, int(thread.thread), "lore:osave:") is not None
