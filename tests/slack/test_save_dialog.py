"""Where "Save thread to Lorekeeper" saves, on Slack: the shortcut opens a modal offering the
namespaces the saver may save into (an admin: every one; an owner: theirs) and this
conversation's own files; the submission saves there, and only if its submitter may."""

from __future__ import annotations

from sqlalchemy import select

from core.db.models import AuditLog
from core.owners import NO_OWNER_TO_SAVE
from core.uploads import HERE, HERE_LABEL
from core.wording import SAVE_THREAD_REFUSED
from tests.scenarios.driver import saved_in
from tests.slack.driver import SlackDriver
from tests.slack.test_message_actions import (
    a_discussed_thread,
    dialog_choices,
    open_save_dialog,
    save_thread,
    submit_dialog,
)

ADMIN, ANA, MEMBER = "U1", "U0ANA", "U2"
QUESTION = "Which level is the basement bike rack on?"


async def three_namespaces(bot: SlackDriver) -> None:
    """team (where C1's files go), ops (Ana owns it) and zeta."""
    for name in ("team", "ops", "zeta"):
        assert "Created namespace" in await bot.command(f"namespace create {name}", admin=True)
    assert "indexed into" in await bot.command("namespace uploads team", admin=True)
    await bot.command("namespace list", user=ANA)  # a person the bot knows
    owned = await bot.command(f"namespace owner ops <@{ANA}>", admin=True)
    assert "now owns" in owned, owned


async def test_the_dialog_offers_an_owner_theirs_and_an_admin_every_namespace(
    slack_driver,
) -> None:
    bot = slack_driver
    await three_namespaces(bot)
    root = await a_discussed_thread(bot)

    view, said = await open_save_dialog(bot, root, user=ADMIN, admin=True)
    assert view is not None and said == ""
    # the place's upload namespace first and preselected, then this conversation, then the rest
    assert dialog_choices(view) == (["team", HERE, "ops", "zeta"], "team")
    [block] = view["blocks"]
    labels = {o["value"]: o["text"]["text"] for o in block["element"]["options"]}
    assert labels[HERE] == HERE_LABEL
    assert [c.params["trigger_id"] for c in bot.slack.methods("views.open")]  # Slack's way in

    view, said = await open_save_dialog(bot, root, user=ANA)
    assert view is not None and said == ""
    assert dialog_choices(view) == ([HERE, "ops"], None)  # C1's team is not Ana's to fill

    view, said = await open_save_dialog(bot, root, user=MEMBER)
    assert view is None and said == NO_OWNER_TO_SAVE  # nobody to suggest it to


async def test_a_thread_saved_into_a_picked_namespace_answers_where_it_is_read(
    slack_driver,
) -> None:
    bot = slack_driver
    await three_namespaces(bot)
    root = await a_discussed_thread(bot)
    said = await save_thread(bot, root, user=ANA, into="ops")
    assert "Indexed Where do we park bikes at the new office.md into ops" in said
    [(title, where)] = await saved_in(bot)
    assert where == "ops"

    assert "now searches" in await bot.command("namespace bind ops", channel="C2", admin=True)
    asked = await bot.mention(QUESTION, channel="C2")
    answer = (await bot.bot_messages(asked))[-1]
    assert "basement" in answer.text
    assert answer.sources and title in answer.sources[0]
    # C1 reads team, where the thread is not
    elsewhere = (await bot.bot_messages(await bot.mention(QUESTION, channel="C1")))[-1]
    assert not any(title in s for s in elsewhere.sources)


async def test_an_admin_may_keep_a_thread_to_its_conversation(slack_driver) -> None:
    bot = slack_driver
    root = bot.slack.people_post("C2", "The wifi password is on the fridge.", user="U3")
    view, _ = await open_save_dialog(bot, root, user=ADMIN, admin=True)
    assert view is not None
    choices, chosen = dialog_choices(view)
    assert choices[0] == chosen == HERE  # no upload namespace: files stay here
    said = await submit_dialog(bot, view)
    assert "Only this conversation can see it" in said
    [(_, where)] = await saved_in(bot)
    assert where.startswith("~")  # a conversation's own files


async def test_a_forged_or_stale_submission_is_refused(slack_driver) -> None:
    bot = slack_driver
    await three_namespaces(bot)
    root = await a_discussed_thread(bot)
    view, _ = await open_save_dialog(bot, root, user=ANA)
    assert view is not None

    # a member submits Ana's dialog as their own
    bot.slack.set_user(MEMBER)
    assert await submit_dialog(bot, view, "ops", user=MEMBER) == SAVE_THREAD_REFUSED
    # Ana names a namespace her dialog never offered
    assert await submit_dialog(bot, view, "team") == SAVE_THREAD_REFUSED
    # she no longer owns ops by the time she submits
    cleared = await bot.command("namespace owner ops", admin=True)
    assert "has no owner now" in cleared, cleared
    assert await submit_dialog(bot, view, "ops") == SAVE_THREAD_REFUSED

    assert await saved_in(bot) == []
    async with bot.container.database.session() as db:
        refused = await db.execute(
            select(AuditLog.arguments).where(
                AuditLog.command == "save-thread", AuditLog.outcome == "refused"
            )
        )
        assert sorted(a["namespace"] for a in refused.scalars()) == ["ops", "ops", "team"]
