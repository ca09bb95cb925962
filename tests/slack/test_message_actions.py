"""The message shortcuts: "Ask Lorekeeper" answers about a chosen message, "Save thread to
Lorekeeper" keeps a thread's people's messages as a document."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select

from adapters.slack import dialog
from adapters.slack.actions import ASK, ASKED_HERE, SAVE, deleted_root
from core.db.models import Document
from core.owners import NO_OWNER_TO_SAVE
from tests.fakes.slack_server import BOT_USER
from tests.scenarios.suite import HANDBOOK
from tests.slack.driver import SlackDriver, bot_message, use_shortcut, visible_text

VACATION = "How many days of paid vacation do employees get?"


async def open_save_dialog(
    bot: SlackDriver, message: dict[str, Any], *, user: str, admin: bool = False
) -> tuple[dict[str, Any] | None, str]:
    """Use "Save thread to Lorekeeper" on ``message``: the modal it opened (None: none), and
    what the invoker was told instead."""
    opened = len(bot.slack.views)
    said = await use_shortcut(bot, SAVE, message, user=user, admin=admin)
    views = list(bot.slack.views.values())[opened:]
    return (views[-1] if views else None), said


def dialog_choices(view: dict[str, Any]) -> tuple[list[str], str | None]:
    """The values a save dialog offers, and the one it preselects."""
    [block] = [b for b in view["blocks"] if b["block_id"] == dialog.BLOCK]
    element = block["element"]
    initial = element.get("initial_option")
    return [o["value"] for o in element["options"]], initial["value"] if initial else None


async def submit_dialog(
    bot: SlackDriver, view: dict[str, Any], into: str | None = None, *, user: str | None = None
) -> str:
    """Submit a save dialog (``into``: the value picked, by default the preselected one) as
    ``user`` (by default whoever opened it); what the submitter was told."""
    into = into or dialog_choices(view)[1]
    assert into is not None
    payload = bot.slack.view_submission(view["id"], {dialog.ACTION: into}, user=user)
    key = json.loads(view["private_metadata"])["url"].rsplit("/", 1)[-1]
    told = len(bot.slack.responses[key])
    status, body = await bot.post(
        urlencode({"payload": json.dumps(payload)}),
        content_type="application/x-www-form-urlencoded",
    )
    assert status == 200 and body == "", body  # an empty 200 closes the modal
    await bot.bot.idle()
    return "\n".join(visible_text(r) for r in bot.slack.responses[key][told:])


async def save_thread(
    bot: SlackDriver,
    message: dict[str, Any],
    *,
    user: str,
    admin: bool = False,
    into: str | None = None,
) -> str:
    """Save ``message``'s thread through the dialog (into ``into``, by default where it
    preselects); what the saver was told (a refusal when no dialog opened)."""
    view, said = await open_save_dialog(bot, message, user=user, admin=admin)
    if view is None:
        return said
    assert said == ""
    return await submit_dialog(bot, view, into)


async def shared_handbook(bot: SlackDriver) -> None:
    assert "Created namespace" in await bot.command("namespace create team", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    await bot.upload("handbook.md", HANDBOOK)


async def test_ask_about_a_message_answers_in_its_thread(sqlite_slack) -> None:
    bot = sqlite_slack
    await shared_handbook(bot)
    posted = bot.slack.people_post("C1", f"<@{BOT_USER}> {VACATION}", user="U3")
    # the bot answers the mention itself ...
    await bot.send_event(dict(posted, type="app_mention"))
    await bot.bot.idle()
    answered = len(bot.slack.thread("C1", posted["ts"]))
    # ... and someone else still gets an answer when they ask about it (slowly enough to stream)
    bot.groq.chunk_delay = 0.15
    assert await use_shortcut(bot, ASK, posted, user="U2") == ""
    shown = bot.slack.thread("C1", posted["ts"])
    assert len(shown) == answered + 1
    answer = bot_message(shown[-1])
    assert "25 days" in answer.text
    assert answer.sources and "handbook.md" in answer.sources[0]
    starts = bot.slack.methods("chat.startStream")
    assert starts[-1].params["recipient_user_id"] == "U2"  # the asker's question, not U3's


async def test_where_the_bot_is_not_the_answer_comes_privately(sqlite_slack) -> None:
    bot = sqlite_slack
    await shared_handbook(bot)
    assert "now searches" in await bot.command("namespace bind team", channel="C7", admin=True)
    bot.slack.outside.add("C7")
    posted = bot.slack.people_post("C7", VACATION, user="U3")
    await use_shortcut(bot, ASK, posted, user="U2")
    assert bot.slack.thread("C7", posted["ts"]) == []
    dm = bot.slack.dms["U2"]
    intro, *answers = sorted(
        (m for (ch, _), m in bot.slack.messages.items() if ch == dm), key=lambda m: m["ts"]
    )
    assert intro["text"] == ASKED_HERE.format(channel="C7")
    assert answers and all(a["thread_ts"] == intro["ts"] for a in answers)
    assert "25 days" in bot_message(answers[-1]).text


async def saved_titles(bot: SlackDriver) -> list[tuple[str, str | None]]:
    async with bot.container.database.session() as db:
        rows = await db.execute(select(Document.title, Document.source_url))
        return sorted((t, u) for t, u in rows.all())


async def a_discussed_thread(bot: SlackDriver) -> dict[str, Any]:
    root = bot.slack.people_post("C1", "Where do we park bikes at the new office?", user="U3")
    bot.slack.people_post(
        "C1", "Bikes go in the basement rack, level -1.", user="U4", thread_ts=root["ts"]
    )
    # the bot's own answer in the thread is never saved
    bot.slack.messages[("C1", bot.slack.next_ts())] = {
        "type": "message",
        "channel": "C1",
        "ts": bot.slack.next_ts(),
        "thread_ts": root["ts"],
        "text": "I think bikes are forbidden entirely.",
        "blocks": [],
        "user": BOT_USER,
        "bot_id": "B0BOT",
    }
    return root


async def test_saving_a_thread_makes_a_document_a_question_cites(sqlite_slack) -> None:
    bot = sqlite_slack
    await bot.command("namespace create team", admin=True)
    await bot.command("namespace uploads team", admin=True)
    root = await a_discussed_thread(bot)
    said = await save_thread(bot, root, user="U1", admin=True)
    assert "Indexed Where do we park bikes at the new office.md into team" in said
    [(title, url)] = await saved_titles(bot)
    assert url == f"https://lore.slack.com/archives/C1/p{root['ts'].replace('.', '')}"
    asked = await bot.mention("Which level is the basement bike rack on?")
    answer = (await bot.bot_messages(asked))[-1]
    assert "basement" in answer.text and "forbidden" not in answer.text
    assert answer.sources and title in answer.sources[0]

    # saving again (a new reply since) replaces the earlier version
    bot.slack.people_post("C1", "Scooters too.", user="U3", thread_ts=root["ts"])
    again = await save_thread(bot, root, user="U1", admin=True)
    assert "replaced the earlier version" in again
    assert len(await saved_titles(bot)) == 1

    # deleting the root removes it
    await bot.send_event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "hidden": True,
            "channel": "C1",
            "ts": bot.slack.next_ts(),
            "deleted_ts": root["ts"],
            "event_ts": bot.slack.next_ts(),
            "channel_type": "channel",
            "previous_message": {"type": "message", "user": "U3", "ts": root["ts"]},
        }
    )
    await bot.bot.idle()
    assert await saved_titles(bot) == []


async def test_a_member_may_not_save_a_thread(sqlite_slack) -> None:
    bot = sqlite_slack
    root = await a_discussed_thread(bot)
    view, said = await open_save_dialog(bot, root, user="U2", admin=False)
    assert view is None and said == NO_OWNER_TO_SAVE  # nobody to suggest it to
    assert await saved_titles(bot) == []


async def test_the_namespace_owner_may_save_a_thread(sqlite_slack) -> None:
    bot = sqlite_slack
    await bot.command("namespace create team", admin=True)
    await bot.command("namespace uploads team", admin=True)
    await bot.command("namespace list", user="U0ANA")  # a person the bot knows
    owned = await bot.command("namespace owner team <@U0ANA>", admin=True)
    assert "now owns" in owned, owned
    root = await a_discussed_thread(bot)
    said = await save_thread(bot, root, user="U0ANA", admin=False)
    assert "into team" in said
    assert len(await saved_titles(bot)) == 1


def test_a_deleted_or_tombstoned_root_names_its_saved_thread() -> None:
    deleted = {"subtype": "message_deleted", "channel": "C1", "deleted_ts": "1.2"}
    # a root with replies stays as a tombstone: Slack sends message_changed
    tombstone = {
        "subtype": "message_changed",
        "channel": "C1",
        "message": {"subtype": "tombstone", "ts": "1.3"},
    }
    assert deleted_root(deleted) == "C1:1.2"
    assert deleted_root(tombstone) == "C1:1.3"
    assert deleted_root({"subtype": "message_changed", "channel": "C1", "message": {}}) is None
