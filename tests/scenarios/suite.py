"""The scenario suite: the same behaviour on every platform adapter.

Each adapter's test module imports ``SCENARIOS`` and parametrizes over it with its own
driver fixture, e.g. ``@pytest.mark.parametrize("scenario", SCENARIOS)``; the fixture builds
the adapter's pipeline with :func:`pipeline_concurrency` for the scenario it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import select

from core.db.models import AuditLog, Document, Feedback, Namespace
from core.wording import ANSWER_FAILED, UPLOAD_FAILED
from tests.scenarios.driver import ChatDriver
from tests.scenarios.faults import INTERNAL, SearchProbe, answering_fails, indexing_fails

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
    async with bot.container.database.session() as db:
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
    async with bot.container.database.session() as db:
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
    assert "indexed into team" in chosen.replace("*", "")  # bold where the platform has it
    assert "uploads go here" in next(
        line for line in (await bot.command("namespace list")).splitlines() if "team" in line
    )
    thread = await bot.upload("handbook.md", HANDBOOK)
    assert "into team" in (await bot.bot_messages(thread))[-1].text
    async with bot.container.database.session() as db:
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
    async with bot.container.database.session() as db:
        votes = sorted((await db.execute(select(Feedback.value))).scalars())
    assert votes == [-1, -1]


async def duplicate_delivery_answers_once(bot: ChatDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    before = bot.llm_calls()
    thread = await bot.deliver_twice("How are travel expenses reimbursed?")
    answers = [m for m in await bot.bot_messages(thread) if m.sources]
    assert len(answers) == 1
    assert bot.llm_calls() - before == 1


# --- trust: what is shared in a private place stays there ----------------------------------

SECRET = b"""# Reorg plan

Project Falcon merges the billing and payments teams on February 3.
"""
SECRET_QUESTION = "When does Project Falcon merge the billing and payments teams?"


async def a_private_channels_files_stay_in_it(bot: ChatDriver) -> None:
    await bot.make_private("C9")
    thread = await bot.upload("reorg.md", SECRET, channel="C9")
    said = (await bot.bot_messages(thread))[-1].text
    assert "Indexed reorg.md" in said and "Only this conversation can see it." in said
    inside = await bot.mention(SECRET_QUESTION, channel="C9")
    assert "February 3" in (await bot.bot_messages(inside))[-1].text
    elsewhere = await bot.mention(SECRET_QUESTION, channel="C2")
    outside = (await bot.bot_messages(elsewhere))[-1]
    assert "February 3" not in outside.text and not outside.sources
    private = await bot.dm(SECRET_QUESTION, user="U2")
    dm = (await bot.bot_messages(private))[-1]
    assert "February 3" not in dm.text and not dm.sources
    member = await bot.command("docs list", user="U2", channel="C2")
    assert "reorg.md" not in member
    async with bot.container.database.session() as db:
        stored = (
            (
                await db.execute(
                    select(Namespace.name).join(Document, Document.namespace_id == Namespace.id)
                )
            )
            .scalars()
            .all()
        )
    assert stored and "general" not in stored


async def a_dm_reads_public_knowledge_only(bot: ChatDriver) -> None:
    await bot.make_private("C9")
    for name, channel in (("team", "C1"), ("secret", "C9")):
        assert "Created namespace" in await bot.command(f"namespace create {name}", admin=True)
        assert "indexed into" in await bot.command(
            f"namespace uploads {name}", channel=channel, admin=True
        )
    await bot.upload("handbook.md", HANDBOOK, channel="C1")
    await bot.upload("reorg.md", SECRET, channel="C9")
    public = await bot.dm("How many days of paid vacation do employees get?", user="U2")
    assert "25 days" in (await bot.bot_messages(public))[-1].text
    private = await bot.dm(SECRET_QUESTION, user="U2")
    assert "February 3" not in (await bot.bot_messages(private))[-1].text
    listed = await bot.command("namespace list", user="U2", channel="C2")
    assert "team" in listed and "secret" not in listed
    assert "1 documents" in await bot.command("namespace info team", user="U2", channel="C1")
    # from a place that does not read it, a namespace's details are not shown to members
    assert "no namespace called" in await bot.command(
        "namespace info team", user="U2", channel="C2"
    )
    hidden = await bot.command("docs list secret", user="U2", channel="C2")
    assert "reorg.md" not in hidden and "no namespace called" in hidden


async def members_cannot_replace_each_others_files(bot: ChatDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK, user="U1")
    theirs = await bot.upload("handbook.md", HANDBOOK_V2, user="U2")
    said = (await bot.bot_messages(theirs))[-1].text
    assert "Someone else's handbook.md stays as it is" in said
    async with bot.container.database.session() as db:
        titles = (await db.execute(select(Document.title))).scalars().all()
        audit = (await db.execute(select(AuditLog.command, AuditLog.outcome))).all()
    assert titles == ["handbook.md", "handbook.md"]
    assert audit.count(("upload", "ok")) == 2 and ("replace", "ok") not in audit
    mine = await bot.upload("handbook.md", HANDBOOK_V2.replace(b"30 days", b"28 days"), user="U1")
    assert "It replaced the earlier version" in (await bot.bot_messages(mine))[-1].text


async def deleting_a_file_on_the_platform_removes_it(bot: ChatDriver) -> None:
    thread = await bot.upload("handbook.md", HANDBOOK)
    await bot.delete_upload(thread)
    async with bot.container.database.session() as db:
        assert (await db.execute(select(Document.id))).first() is None
        audit = (await db.execute(select(AuditLog.command, AuditLog.detail))).all()
    assert ("delete", "deleted on the platform") in audit
    asked = await bot.mention("How many days of paid vacation do employees get?")
    assert "25 days" not in (await bot.bot_messages(asked))[-1].text


async def the_uploader_shares_a_file_with_a_button(bot: ChatDriver) -> None:
    thread = await bot.upload("handbook.md", HANDBOOK, user="U1")
    refused = await bot.click_share(thread, "general", user="U2")
    assert "Only the person who shared that file" in refused
    elsewhere = await bot.mention("How many days of paid vacation do employees get?", channel="C2")
    assert "25 days" not in (await bot.bot_messages(elsewhere))[-1].text
    shared = await bot.click_share(thread, "general", user="U1")
    assert "Shared handbook.md with" in shared and "general" in shared
    again = await bot.mention("How many days of paid vacation do employees get?", channel="C2")
    assert "25 days" in (await bot.bot_messages(again))[-1].text
    async with bot.container.database.session() as db:
        audit = (await db.execute(select(AuditLog.command, AuditLog.outcome))).all()
    assert ("docs promote", "ok") in audit


# --- what the drift missed: a question with its file, errors, the cap, a DM ---------------

QUESTION = "How many days of paid vacation do employees get?"


async def a_question_posted_with_a_file_is_answered_from_it(bot: ChatDriver) -> None:
    thread = await bot.upload("handbook.md", HANDBOOK, text=QUESTION)
    messages = await bot.bot_messages(thread)
    indexed = [i for i, m in enumerate(messages) if "Indexed handbook.md" in m.text]
    answer = messages[-1]
    assert indexed and indexed[-1] < len(messages) - 1  # the file first, then the answer
    assert "25 days" in answer.text
    assert answer.sources and "handbook.md" in answer.sources[0]


async def a_file_that_is_only_presented_gets_no_answer(bot: ChatDriver) -> None:
    before = bot.llm_calls()
    thread = await bot.upload("handbook.md", HANDBOOK, text="here is the handbook")
    messages = await bot.bot_messages(thread)
    assert "Indexed handbook.md" in messages[-1].text
    assert not any(m.sources for m in messages)
    assert bot.llm_calls() == before


def _no_internals(text: str) -> None:
    for leak in ("Traceback", "RuntimeError", INTERNAL):
        assert leak not in text


async def an_internal_error_reads_the_same_everywhere(bot: ChatDriver) -> None:
    await bot.upload("handbook.md", HANDBOOK)
    with answering_fails(bot.container):
        thread = await bot.mention(QUESTION)
        failed = (await bot.bot_messages(thread))[-1]
    assert ANSWER_FAILED in failed.text and not failed.sources
    _no_internals(failed.text)
    with indexing_fails(bot.container):
        dropped = await bot.upload("notes.md", b"# Notes\n\nThe office closes at six.\n")
        told = (await bot.bot_messages(dropped))[-1]
    assert UPLOAD_FAILED.format(name="notes.md") in told.text
    _no_internals(told.text)
    # the bot is not broken by either: the next question is answered
    again = await bot.mention(QUESTION)
    assert "25 days" in (await bot.bot_messages(again))[-1].text


async def the_concurrency_cap_holds(bot: ChatDriver) -> None:
    """Run with the pipeline's concurrency at 1 (see :func:`pipeline_concurrency`)."""
    await bot.upload("handbook.md", HANDBOOK)
    probe = SearchProbe(bot.container, bot.conversations, expected=2)
    with probe.installed():
        threads = await asyncio.gather(
            bot.mention(QUESTION), bot.mention("How are travel expenses reimbursed?")
        )
        vacation, expenses = [(await bot.bot_messages(t))[-1] for t in threads]
    assert probe.all_arrived, "the second question never reached the pipeline"
    assert probe.calls >= 2 and probe.peak == 1
    assert "25 days" in vacation.text and vacation.sources
    assert "14 days" in expenses.text and expenses.sources


async def a_dm_is_answered(bot: ChatDriver) -> None:
    thread = await bot.upload("handbook.md", HANDBOOK)
    assert "Shared handbook.md with" in await bot.click_share(thread, "general")
    dm = await bot.dm(QUESTION, user="U2")
    answer = (await bot.bot_messages(dm))[-1]
    assert "25 days" in answer.text
    assert answer.sources and "handbook.md" in answer.sources[0]
    assert answer.has_feedback_buttons


Scenario = Callable[[ChatDriver], Awaitable[None]]


async def a_refused_question_shows_up_in_gaps(bot: ChatDriver) -> None:
    asked = await bot.mention("How do I reset my VPN password?")
    assert "couldn't find" in (await bot.bot_messages(asked))[-1].text
    for text in ("how many vacation days do I get", "PTO allowance?"):  # one fact, two words
        assert "couldn't find" in (await bot.bot_messages(await bot.mention(text)))[-1].text
    report = await bot.command("gaps 7d", admin=True)
    assert "How do I reset my VPN password?" in report and "(1x, last" in report, report
    assert "3 asked, 2 topics" in report and "(2x, last" in report, report
    refused = await bot.command("gaps", user="U-not-admin")
    assert "Only admins and the namespace's owner" in refused, refused


SCENARIOS: list[Scenario] = [
    ask_after_upload,
    follow_up_without_mention,
    new_version_replaces_old,
    upload_refusal_says_why,
    admin_command_and_refusal,
    uploads_go_to_the_namespace_an_admin_chose,
    feedback_is_stored_and_changeable,
    duplicate_delivery_answers_once,
    a_private_channels_files_stay_in_it,
    a_dm_reads_public_knowledge_only,
    members_cannot_replace_each_others_files,
    deleting_a_file_on_the_platform_removes_it,
    the_uploader_shares_a_file_with_a_button,
    a_question_posted_with_a_file_is_answered_from_it,
    a_file_that_is_only_presented_gets_no_answer,
    an_internal_error_reads_the_same_everywhere,
    the_concurrency_cap_holds,
    a_dm_is_answered,
    a_refused_question_shows_up_in_gaps,
]
# Scenarios that need the adapter's pipeline built with a cap on answers at once.
CAPPED: dict[Scenario, int] = {the_concurrency_cap_holds: 1}


def pipeline_concurrency(request: pytest.FixtureRequest) -> int | None:
    """The concurrency a driver fixture builds its pipeline with for the scenario the test
    runs (None: the adapter's default)."""
    callspec = getattr(request.node, "callspec", None)
    scenario = callspec.params.get("scenario") if callspec is not None else None
    return CAPPED.get(scenario) if scenario is not None else None
