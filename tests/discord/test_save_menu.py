"""Where "Save thread to Lorekeeper" saves, on Discord: the message command answers its user
alone with a select menu of the namespaces they may save into (an admin: every one; an owner:
theirs) and this conversation's own files; a pick saves there, and only if the picker may."""

from __future__ import annotations

from sqlalchemy import select

from adapters.discord.menu import NOT_YOURS, PROMPT
from core.db.models import AuditLog
from core.owners import NO_OWNER_TO_SAVE
from core.uploads import HERE, HERE_LABEL
from core.wording import SAVE_THREAD_REFUSED
from tests.discord.driver import DiscordDriver
from tests.discord.test_message_actions import (
    a_discussed_thread,
    menu_choices,
    open_save_menu,
    pick,
    save_thread,
)
from tests.scenarios.driver import saved_in

ADMIN, ANA, MEMBER = "U1", "Ana", "U2"
QUESTION = "Which level is the basement bike rack on?"


async def three_namespaces(bot: DiscordDriver) -> None:
    """team (where C1's files go), ops (Ana owns it) and zeta."""
    for name in ("team", "ops", "zeta"):
        assert "Created namespace" in await bot.command(f"namespace create {name}", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    await bot.command("namespace list", user=ANA)  # a person the bot knows
    owned = await bot.command(f"namespace owner ops {bot.fake.user(ANA)['id']}", admin=True)
    assert "now owns" in owned, owned


async def test_the_menu_offers_an_owner_theirs_and_an_admin_every_namespace(discord_bot) -> None:
    bot = discord_bot
    await three_namespaces(bot)
    root = await a_discussed_thread(bot)

    menu, said = await open_save_menu(bot, root, user=ADMIN, admin=True)
    assert menu is not None and said == PROMPT
    assert menu.payload["flags"] & 64  # only the admin sees it
    # the place's upload namespace first (described as its default), this conversation, the rest
    assert menu_choices(menu) == (["team", HERE, "ops", "zeta"], "team")
    [row] = menu.payload["components"]
    labels = {o["value"]: o["label"] for o in row["components"][0]["options"]}
    assert labels[HERE] == HERE_LABEL

    menu, said = await open_save_menu(bot, root, user=ANA)
    assert menu is not None
    assert menu_choices(menu) == ([HERE, "ops"], None)  # C1's team is not Ana's to fill

    menu, said = await open_save_menu(bot, root, user=MEMBER)
    assert menu is None and said == NO_OWNER_TO_SAVE  # nobody to suggest it to


async def test_a_thread_saved_into_a_picked_namespace_answers_where_it_is_read(
    discord_bot,
) -> None:
    bot = discord_bot
    await three_namespaces(bot)
    root = await a_discussed_thread(bot)
    said = await save_thread(bot, root, user=ANA, into="ops")
    assert "Indexed Where do we park bikes at the new office.md into ops" in said
    [(title, where)] = await saved_in(bot)
    assert where == "ops"

    assert "now searches" in await bot.command("namespace bind ops", channel="C2", admin=True)
    answer = (await bot.bot_messages(await bot.mention(QUESTION, channel="C2")))[-1]
    assert "basement" in answer.text
    assert answer.sources and title in answer.sources[0]
    # C1 reads team, where the thread is not
    elsewhere = (await bot.bot_messages(await bot.mention(QUESTION, channel="C1")))[-1]
    assert not any(title in s for s in elsewhere.sources)


async def test_a_pick_by_someone_else_or_without_the_right_is_refused(discord_bot) -> None:
    bot = discord_bot
    await three_namespaces(bot)
    root = await a_discussed_thread(bot)
    menu, _ = await open_save_menu(bot, root, user=ANA)
    assert menu is not None

    # someone else picks in Ana's menu (an admin, even)
    assert await pick(bot, menu, "ops", user=ADMIN, admin=True) == NOT_YOURS
    # Ana picks a namespace her menu never offered
    forged = await open_save_menu(bot, root, user=ANA)
    assert forged[0] is not None
    assert await pick(bot, forged[0], "team", user=ANA) == SAVE_THREAD_REFUSED
    # she no longer owns ops by the time she picks
    assert "has no owner now" in await bot.command("namespace owner ops", admin=True)
    assert await pick(bot, menu, "ops", user=ANA) == SAVE_THREAD_REFUSED

    assert await saved_in(bot) == []
    async with bot.container.database.session() as db:
        refused = await db.execute(
            select(AuditLog.arguments).where(
                AuditLog.command == "save-thread", AuditLog.outcome == "refused"
            )
        )
        assert sorted(a["namespace"] for a in refused.scalars()) == ["ops", "team"]
