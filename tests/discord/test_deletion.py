"""Files that go away on Discord without a message deletion: taken off their message by an
edit, or deleted with their thread or channel. Their documents go too: the rows, the chunks,
the vectors and the answers they gave (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from core.db.models import AuditLog, Document, Session
from core.db.types import utcnow
from core.jobs.retention import Retention
from tests.discord.conftest import running_discord_bot
from tests.discord.driver import DiscordDriver
from tests.scenarios.driver import Thread
from tests.scenarios.suite import HANDBOOK, SECRET, SECRET_QUESTION

VACATION = "How many days of paid vacation do employees get?"
PARKING = b"# Parking\n\nVisitors park in the north lot behind the warehouse.\n"


async def test_an_edit_that_takes_files_off_a_message_deletes_their_documents(
    database_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(database_url, tmp_path, embedder) as bot:
        fake = bot.fake
        thread = await bot.upload("parking.md", PARKING)
        handbook = fake.add_attachment("handbook.md", HANDBOOK)
        reorg = fake.add_attachment("reorg.md", SECRET)
        both = fake.message_payload(int(thread.thread), "U1", "", attachments=[handbook, reorg])
        await bot._deliver(both)
        assert "February 3" in await _answer(bot, thread, SECRET_QUESTION)
        ids = await _document_ids(bot)
        mid = int(both["id"])
        await _edited(bot, mid, content="the plans")  # the full message, files unchanged
        await _edited(bot, mid, content="the plans, again", leave_out=("attachments",))
        assert await _titles(bot) == ["handbook.md", "parking.md", "reorg.md"]
        await _edited(bot, mid, attachments=[handbook])
        assert await _titles(bot) == ["handbook.md", "parking.md"]
        assert await _vectors(bot, ids["reorg.md"]) == 0
        assert await _vectors(bot, ids["handbook.md"]) > 0
        assert "February 3" not in await _answer(bot, thread, SECRET_QUESTION)
        assert "25 days" in await _answer(bot, thread, VACATION)
        await _edited(bot, mid, attachments=[])
        assert await _titles(bot) == ["parking.md"]  # another message's file stays
        assert "25 days" not in await _answer(bot, thread, VACATION)
        audit = await _audit(bot)
    assert audit.count(("delete", "removed from its message")) == 2


async def test_deleting_a_thread_deletes_the_documents_uploaded_in_it(
    database_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(database_url, tmp_path, embedder) as bot:
        doomed = await bot.upload("handbook.md", HANDBOOK)  # the thread starts from this message
        await bot.upload("reorg.md", SECRET, thread=doomed)
        other = await bot.mention("hello")
        await bot.upload("parking.md", PARKING, thread=other)
        assert "February 3" in await _answer(bot, doomed, SECRET_QUESTION)
        reorg = (await _document_ids(bot))["reorg.md"]
        await _deleted(bot, bot.fake.delete_thread(int(doomed.thread)), "raw_thread_delete")
        # The message the thread was started from stays in the channel, with its file.
        assert await _titles(bot) == ["handbook.md", "parking.md"]
        assert await _vectors(bot, reorg) == 0
        asked = await bot.mention(SECRET_QUESTION)
        assert "February 3" not in (await bot.bot_messages(asked))[-1].text
        audit = await _audit(bot)
    assert audit.count(("delete", "its thread was deleted on the platform")) == 1


async def test_a_deleted_thread_or_channel_finds_its_documents_after_retention_forgot_it(
    database_url: str, tmp_path: Path, embedder: Any
) -> None:
    """Files indexed into the channel's upload namespace from threads whose conversations the
    retention job has deleted still go with their thread, then with their channel."""
    async with running_discord_bot(database_url, tmp_path, embedder) as bot:
        assert "Created namespace" in await bot.command("namespace create team", admin=True)
        assert "now searches" in await bot.command("namespace bind team", admin=True)
        assert "indexed into team" in (
            await bot.command("namespace uploads team", admin=True)
        ).replace("*", "")
        doomed = await bot.mention("hello")
        await bot.upload("reorg.md", SECRET, thread=doomed)
        other = await bot.mention("hi")
        await bot.upload("parking.md", PARKING, thread=other)
        ids = await _document_ids(bot)
        await Retention(bot.container.database, clock=lambda: utcnow() + timedelta(days=91)).run()
        async with bot.container.database.session() as db:
            assert (await db.execute(select(func.count()).select_from(Session))).scalar() == 0
            assert set((await db.execute(select(Document.session_id))).scalars()) == {None}
        assert "February 3" in await _answer(bot, await bot.mention("hello again"), SECRET_QUESTION)

        await _deleted(bot, bot.fake.delete_thread(int(doomed.thread)), "raw_thread_delete")
        assert await _titles(bot) == ["parking.md"]
        assert await _vectors(bot, ids["reorg.md"]) == 0
        assert await _vectors(bot, ids["parking.md"]) > 0
        assert "February 3" not in await _answer(bot, await bot.mention("hi"), SECRET_QUESTION)

        await Retention(bot.container.database, clock=lambda: utcnow() + timedelta(days=91)).run()
        await _deleted(bot, bot.fake.delete_channel("C1"), "guild_channel_delete")
        assert await _titles(bot) == []
        assert await _vectors(bot, ids["parking.md"]) == 0
        audit = await _audit(bot)
    assert audit.count(("delete", "its thread was deleted on the platform")) == 1
    assert audit.count(("delete", "its channel was deleted on the platform")) == 1


async def test_deleting_a_channel_deletes_the_documents_uploaded_in_it_and_its_threads(
    database_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(database_url, tmp_path, embedder) as bot:
        await bot.upload("handbook.md", HANDBOOK, channel="C1")
        doomed = await bot.upload("reorg.md", SECRET, channel="C2")
        await bot.upload("parking.md", PARKING, thread=doomed)
        # A file whose conversation is forgotten (retention) is still known as the channel's.
        async with bot.container.database.session() as db, db.begin():
            await db.execute(
                update(Document).where(Document.title == "reorg.md").values(session_id=None)
            )
        await _deleted(bot, bot.fake.delete_channel("C2"), "guild_channel_delete")
        assert await _titles(bot) == ["handbook.md"]
        audit = await _audit(bot)
    # Discord's client also reports the deletion of each thread it knew: nothing goes twice.
    platform_deletions = [a for a in audit if a[0] == "delete" and "deleted on the" in a[1]]
    assert len(platform_deletions) == 2
    assert ("delete", "its channel was deleted on the platform") in platform_deletions


async def _answer(bot: DiscordDriver, thread: Thread, question: str) -> str:
    await bot.say_in_thread(thread, question, mention=True)
    return (await bot.bot_messages(thread))[-1].text


async def _edited(bot: DiscordDriver, message_id: int, **changes: Any) -> None:
    edit = bot.fake.edit_user_message(message_id, **changes)
    await _deleted(bot, edit, "raw_message_edit")


async def _deleted(bot: DiscordDriver, change: Any, event: str) -> None:
    seen = await bot._seen(event, lambda *_: True)
    await change
    await seen
    await bot.settle()


async def _titles(bot: DiscordDriver) -> list[str]:
    async with bot.container.database.session() as db:
        return sorted((await db.execute(select(Document.title))).scalars())


async def _document_ids(bot: DiscordDriver) -> dict[str, str]:
    async with bot.container.database.session() as db:
        return {t: str(i) for t, i in (await db.execute(select(Document.title, Document.id)))}


async def _vectors(bot: DiscordDriver, document_id: str) -> int:
    return len(await bot.container.vectors.chunk_ids(document_ids=[document_id]))


async def _audit(bot: DiscordDriver) -> list[tuple[str, str]]:
    async with bot.container.database.session() as db:
        rows = await db.execute(select(AuditLog.command, AuditLog.detail))
        return [(c, d or "") for c, d in rows]
