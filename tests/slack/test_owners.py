"""Owners who get asked: "Ask an owner" under an abstention (or after a 👎) mentions the
namespace owner in the thread once; the owner's answer there gets a "Save thread" offer."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adapters.slack import render
from core.db.models import AuditLog
from core.owners import ALREADY_ASKED, ASKED, SUGGESTED
from core.wording import SAVE_THREAD_FAILED
from tests.fakes.slack_server import BOT_USER
from tests.scenarios.driver import Thread
from tests.slack.driver import SlackDriver, bot_message, button_block

QUESTION = "Where do we park bikes at the new office?"
OWNER = "U0ANA"


async def owned_team(bot: SlackDriver, *, owner: bool = True) -> None:
    assert "Created namespace" in await bot.command("namespace create team", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    if owner:
        await bot.command("namespace list", user=OWNER)  # a person the bot knows
        said = await bot.command(f"namespace owner team <@{OWNER}>", admin=True)
        assert "now owns" in said, said


async def ask(bot: SlackDriver, text: str, *, user: str = "U3") -> dict[str, Any]:
    """A mention kept for conversations.replies (a thread's root), delivered as Slack does."""
    root = bot.slack.people_post("C1", f"<@{BOT_USER}> {text}", user=user)
    await bot.send_event(dict(root, type="app_mention"))
    await bot.send_event(root)
    await bot.bot.idle()
    return root


def bot_posts(bot: SlackDriver, root: dict[str, Any]) -> list[dict[str, Any]]:
    return bot.slack.thread("C1", root["ts"])


def ephemerals_to(bot: SlackDriver, user: str) -> list[dict[str, Any]]:
    return [e for e in bot.slack.ephemerals if e.get("user") == user]


async def audited(bot: SlackDriver, command: str) -> list[str]:
    async with bot.container.database.session() as db:
        rows = await db.execute(select(AuditLog.outcome).where(AuditLog.command == command))
        return [str(r) for r in rows.scalars()]


async def test_an_owner_is_asked_once_and_saves_their_answer(slack_driver) -> None:
    bot = slack_driver
    await owned_team(bot)
    root = await ask(bot, QUESTION)
    [abstained] = bot_posts(bot, root)
    assert "couldn't find that" in bot_message(abstained).text
    assert button_block(abstained, render.ASK_OWNER_ACTION) is not None

    await bot.click_button(abstained, render.ASK_OWNER_ACTION, user="U3", thread_ts=root["ts"])
    posts = bot_posts(bot, root)
    assert len(posts) == 2
    mention = posts[-1]["text"]
    assert mention.startswith(f"<@{OWNER}>") and QUESTION in mention
    assert mention.count("<@") == 1  # the owner is the only one mentioned
    assert ephemerals_to(bot, "U3")[-1]["text"] == ASKED.format(namespace="team")

    # a second click (anyone's) does not mention the owner again
    await bot.click_button(abstained, render.ASK_OWNER_ACTION, user="U2", thread_ts=root["ts"])
    assert len(bot_posts(bot, root)) == 2
    assert ephemerals_to(bot, "U2")[-1]["text"] == ALREADY_ASKED.format(namespace="team")
    assert await audited(bot, "ask-owner") == ["ok", "refused"]

    # the owner answers in the thread: offered "Save thread" (only they see it), not answered
    answer = "Bikes go in the basement rack, level -1."
    reply = bot.slack.people_post("C1", answer, user=OWNER, thread_ts=root["ts"])
    await bot.send_event(reply)
    await bot.bot.idle()
    assert len(bot_posts(bot, root)) == 2
    [offer] = ephemerals_to(bot, OWNER)
    assert offer["thread_ts"] == root["ts"]
    # a second answer of theirs is not offered again
    more = bot.slack.people_post("C1", "Scooters too.", user=OWNER, thread_ts=root["ts"])
    await bot.send_event(more)
    await bot.bot.idle()
    assert len(ephemerals_to(bot, OWNER)) == 1

    offer_message = {"blocks": offer["blocks"]}
    said = await bot.click_button(
        offer_message, render.OWNER_SAVE_ACTION, user=OWNER, ephemeral=True
    )
    assert "into team" in said, said

    again = await ask(bot, QUESTION, user="U2")
    cited = bot_message(bot_posts(bot, again)[-1])
    assert "couldn't find" not in cited.text
    assert cited.sources and "Where do we park bikes" in cited.sources[0]
    assert button_block(bot_posts(bot, again)[-1], render.ASK_OWNER_ACTION) is None


async def test_without_an_owner_there_is_no_button(sqlite_slack) -> None:
    bot = sqlite_slack
    await owned_team(bot, owner=False)
    root = await ask(bot, QUESTION)
    [abstained] = bot_posts(bot, root)
    assert "couldn't find that" in bot_message(abstained).text
    assert button_block(abstained, render.ASK_OWNER_ACTION) is None
    await bot.click_feedback(Thread("C1", root["ts"]), -1, user="U2")
    assert ephemerals_to(bot, "U2") == []


async def test_a_thumbs_down_offers_the_voter_to_ask_the_owner(sqlite_slack) -> None:
    bot = sqlite_slack
    await owned_team(bot)
    root = await ask(bot, QUESTION)
    [abstained] = bot_posts(bot, root)
    await bot.click_button(abstained, "lore_feedback_down", user="U2", thread_ts=root["ts"])
    [offer] = ephemerals_to(bot, "U2")
    offered = {"blocks": offer["blocks"]}
    await bot.click_button(offered, render.ASK_OWNER_ACTION, user="U2", ephemeral=True)
    posts = bot_posts(bot, root)
    assert len(posts) == 2 and posts[-1]["text"].startswith(f"<@{OWNER}>")


async def test_a_suggestion_that_could_not_be_posted_can_be_made_again(slack_driver) -> None:
    bot = slack_driver
    await owned_team(bot)
    thread = await bot.mention(QUESTION, user="U3")
    bot.slack.error("chat.postMessage", "channel_not_found")
    assert await bot.member_saves(thread, user="U4") == SAVE_THREAD_FAILED
    assert await audited(bot, "suggest-save") == ["ok", "failed"]
    assert await bot.member_saves(thread, user="U4") == SUGGESTED.format(namespace="team")
    said = bot_message(bot_posts(bot, {"ts": thread.thread})[-1]).text
    assert said.startswith(f"<@{OWNER}>") and "suggests saving" in said, said
