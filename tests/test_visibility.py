"""Who sees what: a private place's files stay in it, DMs read only public knowledge, and
nobody lists what they could not read on the platform. Real databases, milvus-lite, embedder."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core.db.models import AuditLog, Document, Namespace
from tests.harness import BotHarness

SECRET = b"""# Reorg plan

Project Falcon merges the billing and payments teams on February 3.
The merged team reports to Dana Whitfield.
"""
QUESTION = "When does Project Falcon merge the billing and payments teams?"
HANDBOOK = b"""# Handbook

Employees receive 25 days of paid vacation per year.
"""
VACATION = "How many days of paid vacation do employees get?"


class Platform:
    """A PrivacyChecker standing in for Slack's conversations.info or Discord's overwrites."""

    def __init__(self, private: dict[str, bool | None]) -> None:
        self.private = private
        self.asked: list[str] = []

    async def is_private(self, workspace_id: str, channel_id: str) -> bool | None:
        self.asked.append(channel_id)
        return self.private.get(channel_id)


@pytest.fixture
async def bot(database_url, tmp_path, embedder):
    harness = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    harness.platform_privacy = Platform({"C-public": False, "C-other": False, "G-secret": True})
    harness.container.places.register(harness.platform.value, harness.platform_privacy)
    try:
        yield harness
    finally:
        await harness.close()


async def test_a_file_dropped_in_a_private_channel_stays_there(bot) -> None:
    dropped = await bot.upload("reorg.md", SECRET, channel="G-secret", place_private=True)
    assert dropped.ok and "Only this conversation can see it." in dropped.message
    here = await bot.say(QUESTION, channel="G-secret", thread="T2")
    assert "February 3" in here.text and here.citations
    for elsewhere in (
        {"channel": "C-other"},
        {"channel": "D-dm", "is_direct": True},
    ):
        answer = await bot.say(QUESTION, thread="T9", **elsewhere)
        assert "February 3" not in answer.text and not answer.citations, elsewhere
        assert answer.abstained
    async with bot.container.database.session() as db:
        general = (
            await db.execute(select(Namespace.id).where(Namespace.name == "general"))
        ).scalar_one()
        placed = (await db.execute(select(Document.namespace_id))).scalars().all()
    assert placed and general not in placed


async def test_a_dm_reads_public_knowledge_and_its_own_files_only(bot) -> None:
    for name in ("people", "secret"):
        await bot.admin(f"namespace create {name}")
    await bot.admin("namespace uploads people", channel="C-public")
    await bot.admin("namespace uploads secret", channel="G-secret")
    await bot.upload(
        "handbook.md", HANDBOOK, channel="C-public", user="U-admin", author_is_admin=True
    )
    await bot.upload("reorg.md", SECRET, channel="G-secret", user="U-admin", author_is_admin=True)
    await bot.upload("mine.md", b"My locker code is 4512.\n", channel="D-other", is_direct=True)

    dm = {"channel": "D-dm", "is_direct": True}
    vacation = await bot.say(VACATION, **dm)
    assert "25 days" in vacation.text and vacation.citations  # bound to a public channel
    secret = await bot.say(QUESTION, thread="T2", **dm)
    assert "February 3" not in secret.text and not secret.citations  # bound only privately
    locker = await bot.say("What is my locker code?", thread="T3", **dm)
    assert "4512" not in locker.text  # another DM's file
    # the platform was asked about the channels whose privacy it had not told yet
    assert {"C-public", "G-secret"} <= set(bot.platform_privacy.asked)


async def test_privacy_unknown_counts_as_private_and_is_refreshed(bot) -> None:
    await bot.admin("namespace create team")
    await bot.admin("namespace uploads team", channel="C-new")
    await bot.upload("handbook.md", HANDBOOK, channel="C-new", user="U-admin", author_is_admin=True)
    dm = {"channel": "D-dm", "is_direct": True}
    # C-new: the platform cannot tell (e.g. the bot lacks the scope): private
    assert not (await bot.say(VACATION, **dm)).citations
    bot.platform_privacy.private["C-new"] = False
    places = bot.container.places
    places._ttl = timedelta(0)  # the stored answer is stale at once
    places._readable.clear()
    assert "25 days" in (await bot.say(VACATION, thread="T2", **dm)).text


async def test_only_the_uploader_or_an_admin_replaces_a_document(bot) -> None:
    await bot.admin("namespace create team")
    await bot.admin("namespace uploads team")
    first = await bot.upload("handbook.md", HANDBOOK, user="U-ada")
    other = await bot.upload("handbook.md", HANDBOOK.replace(b"25", b"2"), user="U-eve")
    assert other.ok and other.replaced == 0
    assert "Someone else's handbook.md stays as it is" in other.message
    mine = await bot.upload("handbook.md", HANDBOOK.replace(b"25", b"26"), user="U-ada")
    assert mine.replaced == 1  # Ada's own older version, not Eve's
    admin = await bot.upload(
        "handbook.md", HANDBOOK.replace(b"25", b"30"), user="U-boss", author_is_admin=True
    )
    assert admin.replaced == 2  # an admin replaces anyone's
    async with bot.container.database.session() as db:
        docs = (await db.execute(select(Document.id))).scalars().all()
        audit = (await db.execute(select(AuditLog.command, AuditLog.outcome))).all()
    assert docs == [admin.document_id]
    assert first.document_id not in docs
    assert audit.count(("upload", "ok")) == 4 and audit.count(("replace", "ok")) == 3


async def test_an_uploader_promotes_a_conversation_file_and_others_cannot(bot) -> None:
    dropped = await bot.upload("handbook.md", HANDBOOK, user="U-ada", channel="C-public")
    assert dropped.share_with == ("general",)
    refused = await bot.admin(
        f"docs promote {dropped.document_id} general",
        is_admin=False,
        user="U-eve",
        channel="C-public",
    )
    assert not refused.ok and "Only the person who shared that file" in refused.text
    assert not (await bot.say(VACATION, channel="C-other")).citations
    done = await bot.admin(
        f"docs promote {dropped.document_id} general",
        is_admin=False,
        user="U-ada",
        channel="C-public",
    )
    assert done.ok and "Shared handbook.md with general:" in done.text, done.text
    answer = await bot.say(VACATION, channel="C-other", thread="T2")
    assert "25 days" in answer.text and answer.citations
    async with bot.container.database.session() as db:
        audit = (await db.execute(select(AuditLog.command, AuditLog.outcome))).all()
    assert ("docs promote", "refused") in audit or ("docs promote", "failed") in audit
    assert ("docs promote", "ok") in audit


async def test_non_admins_list_only_what_their_place_may_read(bot) -> None:
    await bot.admin("namespace create hr")
    await bot.admin("namespace bind hr", channel="G-secret")
    await bot.upload("reorg.md", SECRET, channel="G-secret", user="U-admin", author_is_admin=True)
    await bot.admin("namespace uploads hr", channel="G-secret")
    await bot.upload("plan.md", SECRET, channel="G-secret", user="U-admin", author_is_admin=True)
    member = {"is_admin": False, "user": "U-eve", "channel": "C-public"}
    assert "There is no namespace called 'hr'" in (await bot.admin("docs list hr", **member)).text
    assert (
        "There is no namespace called 'hr'" in (await bot.admin("namespace info hr", **member)).text
    )
    assert "hr" not in (await bot.admin("namespace list", **member)).text
    assert "plan.md" not in (await bot.admin("docs list", **member)).text
    # inside the private channel its members see it, but a member never sees it named elsewhere
    inside = await bot.admin("namespace info hr", is_admin=False, user="U-eve", channel="G-secret")
    assert inside.ok and "G-secret" not in inside.text
    admin = await bot.admin("namespace info hr", channel="C-public")
    assert "G-secret" in admin.text


async def test_a_platform_deletion_removes_the_document_at_any_age(bot) -> None:
    dropped = await bot.upload("handbook.md", HANDBOOK, file_id="F123", channel="C-public")
    async with bot.container.database.session() as db, db.begin():  # upload retention ran
        from core.db.models import Upload

        await db.execute(Upload.__table__.delete())
    removed = await bot.container.uploads.deleted_on_platform(
        bot.platform.value, file_id="F123", workspace=bot.workspace
    )
    assert removed == 1
    assert await bot.container.knowledge.document(dropped.document_id) is None
    held = await bot.container.vectors.chunk_ids(document_ids=[str(dropped.document_id)])
    assert held == set()
    assert not (await bot.say(VACATION, channel="C-public")).citations
