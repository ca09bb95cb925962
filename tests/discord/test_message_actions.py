"""The message context-menu commands: "Ask Lorekeeper" answers about a chosen message, "Save
thread to Lorekeeper" keeps a thread's people's messages as a document."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from adapters.discord import menu as save_menu
from adapters.discord.actions import ASK, SAVE
from core.db.models import Document
from core.owners import NO_OWNER_TO_SAVE
from tests.discord.conftest import running_discord_bot
from tests.discord.driver import (
    DiscordDriver,
    PostedMessage,
    custom_ids,
    message_text,
    to_bot_message,
)
from tests.fakes.discord_server import MANAGE_GUILD, MEMBER_PERMISSIONS, VIEW_CHANNEL
from tests.scenarios.driver import Thread
from tests.scenarios.suite import HANDBOOK

VACATION = "How many days of paid vacation do employees get?"


@pytest.fixture
async def bot(sqlite_url, tmp_path, embedder) -> AsyncIterator[DiscordDriver]:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as driver:
        yield driver


async def use_command(
    bot: DiscordDriver,
    name: str,
    message: dict[str, Any],
    *,
    user: str,
    admin: bool = False,
    app_permissions: int = MEMBER_PERMISSIONS,
) -> list[str]:
    """Use a message command on ``message``; what the invoker saw (ephemeral)."""
    payload = bot.fake.message_command_payload(
        name,
        message,
        user=user,
        permissions=MEMBER_PERMISSIONS | (MANAGE_GUILD if admin else 0),
        app_permissions=app_permissions,
    )
    record = await bot.fake.interact(payload)
    await bot.settle()
    shown = [record.original or {}, *record.followups]
    return [message_text(PostedMessage(m)) for m in shown if m]


async def open_save_menu(
    bot: DiscordDriver, message: dict[str, Any], *, user: str, admin: bool = False
) -> tuple[PostedMessage | None, str]:
    """Use "Save thread to Lorekeeper" on ``message``: the ephemeral menu it answered with
    (None: no menu), and the answer's words."""
    permissions = MEMBER_PERMISSIONS | (MANAGE_GUILD if admin else 0)
    payload = bot.fake.message_command_payload(SAVE, message, user=user, permissions=permissions)
    record = await bot.fake.interact(payload)
    await bot.settle()
    assert record.original is not None and not record.followups
    shown = PostedMessage(record.original)  # the response itself: picks edit it
    return (shown if custom_ids(shown) else None), message_text(shown)


def menu_choices(menu: PostedMessage) -> tuple[list[str], str | None]:
    """The values a save menu offers, and the one it describes as the place's default."""
    [row] = menu.payload["components"]
    [select] = row["components"]
    assert select["type"] == 3  # a string select
    options = select["options"]
    default = [o["value"] for o in options if o.get("description") == save_menu.DEFAULT]
    return [o["value"] for o in options], (default[0] if default else None)


async def pick(
    bot: DiscordDriver, menu: PostedMessage, value: str, *, user: str, admin: bool = False
) -> str:
    """Pick ``value`` in a save menu as ``user``; what they were shown in the end."""
    [custom_id] = custom_ids(menu)
    permissions = MEMBER_PERMISSIONS | (MANAGE_GUILD if admin else 0)
    payload = bot.fake.select_payload(menu, custom_id, [value], user=user, permissions=permissions)
    record = await bot.fake.interact(payload)
    await bot.settle()
    if record.original is not None:  # a new ephemeral message, not the menu's
        return message_text(PostedMessage(record.original))
    return message_text(menu)


async def save_thread(
    bot: DiscordDriver,
    message: dict[str, Any],
    *,
    user: str,
    admin: bool = False,
    into: str | None = None,
) -> str:
    """Save ``message``'s thread through the menu (into ``into``, by default the place's
    default); what the saver was shown (a refusal when no menu came)."""
    menu, said = await open_save_menu(bot, message, user=user, admin=admin)
    if menu is None:
        return said
    into = into or menu_choices(menu)[1]
    assert into is not None
    return await pick(bot, menu, into, user=user, admin=admin)


async def shared_handbook(bot: DiscordDriver) -> None:
    assert "Created namespace" in await bot.command("namespace create team", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    await bot.upload("handbook.md", HANDBOOK)


async def test_ask_about_a_message_answers_in_a_thread_from_it(bot) -> None:
    await shared_handbook(bot)
    posted = await bot.fake.user_message("C1", "U3", VACATION)  # no mention: not answered
    await bot.settle()
    said = await use_command(bot, ASK, posted, user="U2")
    thread = bot.fake.threads_by_message[int(posted["id"])]
    assert said == [f"I answered in <#{thread}>."]
    answer = to_bot_message(bot.fake.messages_in(thread)[-1])
    assert "25 days" in answer.text
    assert answer.sources and "handbook.md" in answer.sources[0]


async def test_where_the_bot_cannot_post_the_answer_is_ephemeral(bot) -> None:
    await shared_handbook(bot)
    posted = await bot.fake.user_message("C1", "U3", VACATION)
    await bot.settle()
    said = await use_command(bot, ASK, posted, user="U2", app_permissions=VIEW_CHANNEL)
    assert int(posted["id"]) not in bot.fake.threads_by_message
    assert any("25 days" in s for s in said)


async def a_discussed_thread(bot: DiscordDriver) -> dict[str, Any]:
    fake = bot.fake
    root = await fake.user_message("C1", "U3", "Where do we park bikes at the new office?")
    mid, cid = int(root["id"]), int(root["channel_id"])
    thread = fake._thread(mid, cid, "bikes")
    fake.channels[mid] = thread
    fake.threads_by_message[mid] = mid
    await fake.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
    await fake.user_message(mid, "U4", "Bikes go in the basement rack, level -1.")
    # the bot's own answer in the thread is never saved
    answer = fake._bot_message(mid, {"content": "I think bikes are forbidden entirely."})
    fake.messages[int(answer["id"])] = PostedMessage(answer)
    await bot.settle()
    return root


async def saved(bot: DiscordDriver) -> list[tuple[str, str | None]]:
    async with bot.container.database.session() as db:
        rows = await db.execute(select(Document.title, Document.source_url))
        return sorted((t, u) for t, u in rows.all())


async def test_saving_a_thread_makes_a_document_a_question_cites(bot) -> None:
    await bot.command("namespace create team", admin=True)
    await bot.command("namespace uploads team", admin=True)
    root = await a_discussed_thread(bot)
    said = await save_thread(bot, root, user="U1", admin=True)
    assert "Indexed Where do we park bikes at the new office.md into team" in said
    [(title, url)] = await saved(bot)
    assert url == f"https://discord.com/channels/{bot.fake.guild_id}/{root['id']}"
    asked = await bot.mention("Which level is the basement bike rack on?")
    answer = (await bot.bot_messages(asked))[-1]
    assert "basement" in answer.text and "forbidden" not in answer.text
    assert answer.sources and title in answer.sources[0]

    await bot.fake.user_message(int(root["id"]), "U3", "Scooters too.")
    again = await save_thread(bot, root, user="U1", admin=True)
    assert "replaced the earlier version" in again
    assert len(await saved(bot)) == 1

    # deleting the thread's first message deletes the document (the thread's id is the root's)
    await bot.delete_root(Thread(channel=str(root["channel_id"]), thread=str(root["id"])))
    assert await saved(bot) == []


async def test_a_member_may_not_save_a_thread(bot) -> None:
    root = await a_discussed_thread(bot)
    menu, said = await open_save_menu(bot, root, user="U2")
    assert menu is None and said == NO_OWNER_TO_SAVE  # nobody to suggest it to
    assert await saved(bot) == []
