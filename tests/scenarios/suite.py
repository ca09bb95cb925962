"""The scenario suite: the same behaviour on every platform adapter.

Each adapter's test module imports ``SCENARIOS`` and parametrizes over it with its own
driver fixture, e.g. ``@pytest.mark.parametrize("scenario", SCENARIOS)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select

from core.db.models import AuditLog, Document, Feedback, Namespace
from tests.scenarios.driver import ChatDriver

HANDBOOK = b"""# Team handbook

## Vacation policy
Employees receive 25 days of paid vacation per year. Unused days expire on March 31.

## Expenses
Travel expenses are reimbursed within 14 days when the receipt is uploaded to the portal.
"""

HANDBOOK_V2 = HANDBOOK.replace(b"25 days", b"30 days").replace(b"March 31", b"April 30")


async def ask_after_upload(bot: ChatDriver) -> None:
    thread = await bot.upload("handbook.md", HANDBOOK)
    progress = (await bot.bot_messages(thread))[-1]
    assert "Indexed handbook.md" in progress.text and "chunks" in progress.text
    asked = await bot.mention("How many days of paid vacation do employees get?")
    answer = (await bot.bot_messages(asked))[-1]
    assert "25 days" in answer.text
    assert answer.sources and "handbook.md" in answer.sources[0]
    assert answer.has_feedback_buttons


async def follow_up_without_mention(bot: ChatDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    thread = await bot.mention("What is the vacation policy?")
    await bot.bot_messages(thread)
    await bot.say_in_thread(thread, "When do unused days expire?")
    messages = await bot.bot_messages(thread)
    assert "March 31" in messages[-1].text


async def new_version_replaces_old(bot: ChatDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    thread = await bot.upload("handbook.md", HANDBOOK_V2)
    last = (await bot.bot_messages(thread))[-1]
    assert "Indexed handbook.md" in last.text
    assert "It replaced the earlier version of handbook.md." in last.text
    asked = await bot.mention("How many days of paid vacation do employees get?")
    answer = (await bot.bot_messages(asked))[-1]
    assert "30 days" in answer.text and "25 days" not in answer.text
    async with bot.container.sessions() as db:
        titles = (await db.execute(select(Document.title))).scalars().all()
    assert titles == ["handbook.md"]


async def upload_refusal_says_why(bot: ChatDriver) -> None:
    thread = await bot.upload("tool.exe", b"MZ\x90\x00" + bytes(200))
    last = (await bot.bot_messages(thread))[-1]
    assert "tool.exe" in last.text and "can't index" in last.text
    assert "Traceback" not in last.text


async def admin_command_and_refusal(bot: ChatDriver) -> None:
    created = await bot.command("namespace create hr People handbook", admin=True)
    assert "Created namespace" in created and "hr" in created
    refused = await bot.command("namespace delete hr", user="U-not-admin", admin=False)
    assert "Only workspace admins" in refused
    listed = await bot.command("namespace list", user="U-not-admin")
    assert "hr" in listed
    unknown = await bot.command("frobnicate now")
    assert "don't know" in unknown and "/lore ask" in unknown
    async with bot.container.sessions() as db:
        outcomes = (await db.execute(select(AuditLog.command, AuditLog.outcome))).all()
    assert ("namespace create", "ok") in outcomes and ("namespace delete", "refused") in outcomes


async def uploads_go_to_the_namespace_an_admin_chose(bot: ChatDriver) -> None:
    for name in ("archive", "team"):
        assert "Created namespace" in await bot.command(f"namespace create {name}", admin=True)
        assert "now searches" in await bot.command(f"namespace bind {name}", admin=True)
    # by name, "archive" would come first; the admin picks "team" for this channel's files
    refused = await bot.command("namespace uploads team", user="U-not-admin", admin=False)
    assert "Only workspace admins" in refused
    chosen = await bot.command("namespace uploads team", admin=True)
    assert "indexed into *team*" in chosen or "indexed into **team**" in chosen
    assert "uploads go here" in next(
        line for line in (await bot.command("namespace list")).splitlines() if "team" in line
    )
    thread = await bot.upload("handbook.md", HANDBOOK)
    assert "into team" in (await bot.bot_messages(thread))[-1].text
    async with bot.container.sessions() as db:
        placed = (
            await db.execute(
                select(Document.title, Namespace.name).join(
                    Namespace, Namespace.id == Document.namespace_id
                )
            )
        ).all()
    assert placed == [("handbook.md", "team")]
    asked = await bot.mention("How many days of paid vacation do employees get?")
    assert "25 days" in (await bot.bot_messages(asked))[-1].text


async def feedback_is_stored_and_changeable(bot: ChatDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    thread = await bot.mention("How are travel expenses reimbursed?")
    await bot.bot_messages(thread)
    await bot.click_feedback(thread, 1)
    await bot.click_feedback(thread, -1)
    await bot.click_feedback(thread, -1, user="U2")
    async with bot.container.sessions() as db:
        votes = sorted((await db.execute(select(Feedback.value))).scalars())
    assert votes == [-1, -1]


async def duplicate_delivery_answers_once(bot: ChatDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    before = bot.llm_calls()
    thread = await bot.deliver_twice("How are travel expenses reimbursed?")
    answers = [m for m in await bot.bot_messages(thread) if m.sources]
    assert len(answers) == 1
    assert bot.llm_calls() - before == 1


Scenario = Callable[[ChatDriver], Awaitable[None]]
SCENARIOS: list[Scenario] = [
    ask_after_upload,
    follow_up_without_mention,
    new_version_replaces_old,
    upload_refusal_says_why,
    admin_command_and_refusal,
    uploads_go_to_the_namespace_an_admin_chose,
    feedback_is_stored_and_changeable,
    duplicate_delivery_answers_once,
]
