"""Who reads what on Discord: private channels, DMs and the servers they read, files deleted on
Discord, sharing a conversation's file, and who may replace whose file."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.db.models import AuditLog, Channel, Document
from tests.discord.conftest import SCENARIO_CHANNELS, running_discord_bot
from tests.discord.driver import DiscordDriver, custom_ids, start_client, stop_client
from tests.fakes.discord_server import EPHEMERAL, MANAGE_GUILD, FakeDiscord, PostedMessage
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.harness import BotHarness
from tests.scenarios.suite import HANDBOOK, HANDBOOK_V2, SECRET, SECRET_QUESTION

VACATION = "How many days of paid vacation do employees get?"


class KnowsNothing:
    """A privacy checker that can never tell: what core stores comes from the events alone."""

    async def is_private(self, workspace_id: str, channel_id: str) -> bool | None:
        return None


async def test_a_channel_is_private_when_everyone_may_not_view_it(
    sqlite_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as bot:
        fake, privacy = bot.fake, bot.client.privacy
        guild, c1, c9 = str(fake.guild_id), *(str(fake.channel_id(c)) for c in ("C1", "C9"))
        assert await privacy.is_private(guild, c1) is False
        await bot.make_private("C9")
        assert await privacy.is_private(guild, c9) is True
        thread = await bot.mention("hello", channel="C9")
        assert await privacy.is_private(guild, thread.thread) is True  # its parent's view
        hidden = fake.add_private_thread("C1", "planning")  # not in the gateway's cache
        assert await privacy.is_private(guild, str(hidden)) is True
        assert ("GET", f"/channels/{hidden}") in fake.requests
        await bot.make_public("C9")
        assert await privacy.is_private(guild, c9) is False
        # Whatever cannot be told is None, which core takes for private.
        assert await privacy.is_private(guild, "1234") is None  # Discord: Unknown Channel
        assert await privacy.is_private("1234", c1) is None  # a server the bot is not in
        assert await privacy.is_private(guild, "C1") is None
        assert await privacy.is_private("dm-5", "77") is True


async def test_messages_say_whether_their_channel_is_private(
    sqlite_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as bot:
        bot.container.places.register("discord", KnowsNothing())
        await bot.make_private("C9")
        for channel in SCENARIO_CHANNELS:
            await bot.mention("hello", channel=channel)
        async with bot.container.database.session() as db:
            stored = dict((await db.execute(select(Channel.external_id, Channel.is_private))).all())
        ids = {name: str(bot.fake.channel_id(name)) for name in SCENARIO_CHANNELS}
    assert {name: stored[i] for name, i in ids.items()} == {"C1": False, "C2": False, "C9": True}


async def test_a_dm_reads_the_public_knowledge_of_the_servers_its_author_shares(
    sqlite_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as bot:
        fake = bot.fake
        await bot.command("namespace create team", admin=True)
        await bot.command("namespace uploads team", admin=True)
        await bot.upload("handbook.md", HANDBOOK)
        member = await bot.dm(VACATION, user="U4")
        assert "25 days" in (await bot.bot_messages(member))[-1].text
        asked = await bot.command(f"ask {VACATION}", user="U4", channel="dm:U4")
        assert "25 days" in asked
        # Its own files stay in it; as in a Slack DM, its uploader may share one with the
        # organisation's namespaces later (the buttons name them).
        await bot._deliver(
            fake.dm_payload("U4", "", attachments=[fake.add_attachment("dm.md", SECRET)])
        )
        indexed = fake.messages_in(fake.dm_channel_id("U4"))[-1]
        assert "Only this conversation can see it." in indexed.payload["content"]
        assert sorted(i.rsplit(":", 1)[1] for i in custom_ids(indexed)) == ["general", "team"]
        # U3 shares no server with the bot: Lorekeeper is not enabled in its DM.
        stranger = fake.dm_payload("U3", VACATION)
        await bot._deliver(stranger)
        [reply] = fake.messages_in(int(stranger["channel_id"]))
        assert "25 days" not in reply.payload["content"]
        assert "25 days" not in await bot.command(f"ask {VACATION}", user="U3", channel="dm:U3")
    lookups = [p for m, p in fake.requests if m == "GET" and "/members/" in p]
    # once per person within the cache's lifetime: U4 and U3
    assert sorted(lookups) == sorted(
        f"/guilds/{fake.guild_id}/members/{fake.user(u)['id']}" for u in ("U3", "U4")
    )


async def test_deleting_messages_on_discord_deletes_their_documents(
    sqlite_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as bot:
        fake = bot.fake
        thread = await bot.upload("handbook.md", HANDBOOK)
        await bot.upload("reorg.md", SECRET, thread=thread)
        await bot.upload("handbook-v2.md", HANDBOOK_V2, thread=thread)
        notes = fake.add_attachment("notes.md", b"# Notes\n\nThe DM's own notes.\n")
        in_dm = fake.dm_payload("U1", "", attachments=[notes])
        await bot._deliver(in_dm)
        chatter = await fake.user_message(thread.thread, "U1", "no file here")
        await _deleted(bot, fake.delete_message(int(chatter["id"])), "raw_message_delete")
        assert len(await _titles(bot)) == 4
        in_thread = [m.id for m in fake.messages_in(int(thread.thread), bot=False)]
        bulk = fake.bulk_delete(int(thread.thread), in_thread)
        await _deleted(bot, bulk, "raw_bulk_message_delete")
        assert await _titles(bot) == ["handbook.md", "notes.md"]
        await bot.delete_upload(thread)  # the mention that started the thread
        assert await _titles(bot) == ["notes.md"]
        await _deleted(bot, fake.delete_message(int(in_dm["id"])), "raw_message_delete")
        assert await _titles(bot) == []
        async with bot.container.database.session() as db:
            audit = (await db.execute(select(AuditLog.command, AuditLog.detail))).all()
    assert audit.count(("delete", "deleted on the platform")) == 4


async def _deleted(bot: DiscordDriver, deletion: Any, event: str) -> None:
    seen = await bot._seen(event, lambda _event: True)
    await deletion
    await seen
    await bot.settle()


async def _titles(bot: DiscordDriver) -> list[str]:
    async with bot.container.database.session() as db:
        return sorted((await db.execute(select(Document.title))).scalars())


@asynccontextmanager
async def world(
    database_url: str, folder: Path, embedder: Any
) -> AsyncIterator[tuple[FakeDiscord, FakeGroq, BotHarness]]:
    async with (
        FakeGroq(responder=relevant_quoting_responder) as groq,
        FakeDiscord(channels=SCENARIO_CHANNELS) as fake,
    ):
        harness = await BotHarness.start(
            database_url, folder, embedder=embedder, groq_base_url=groq.base_url
        )
        try:
            yield fake, groq, harness
        finally:
            await harness.close()


@asynccontextmanager
async def running(
    fake: FakeDiscord, groq: FakeGroq, harness: BotHarness, **options: Any
) -> AsyncIterator[DiscordDriver]:
    client, task = await start_client(fake, harness.container, **options)
    try:
        yield DiscordDriver(fake, client, harness.container, groq)
    finally:
        await stop_client(client, task)


async def test_an_admin_shares_anyones_file_with_a_button_that_outlives_a_restart(
    sqlite_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with world(sqlite_url, tmp_path, embedder) as (fake, groq, harness):
        async with running(fake, groq, harness) as bot:
            thread = await bot.upload("handbook.md", HANDBOOK, user="U1")
        async with running(fake, groq, harness) as bot:  # a new process: nothing in memory
            told = await bot.click_share(thread, "general", user="U5", admin=True)
            elsewhere = await bot.mention(VACATION, channel="C2")
            answer = (await bot.bot_messages(elsewhere))[-1]
    assert "Shared handbook.md with" in told and "general" in told
    record = list(fake.interactions.values())[-1]
    assert record.callbacks == [{"type": 6}]  # acknowledged at once, the clicker sees no spinner
    assert [f["flags"] & EPHEMERAL for f in record.followups] == [EPHEMERAL]
    indexed = _message_with_buttons(fake, int(thread.thread), had="lore:share:")
    assert "Indexed handbook.md" in indexed.payload["content"] and not custom_ids(indexed)
    assert "25 days" in answer.text


def _message_with_buttons(fake: FakeDiscord, channel: int, *, had: str) -> PostedMessage:
    return next(
        m
        for m in fake.messages_in(channel)
        if any(any(i.startswith(had) for i in custom_ids(PostedMessage(h))) for h in m.history)
    )


async def test_promote_and_upload_quotas_from_the_slash_command(
    sqlite_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as bot:
        await bot.upload("reorg.md", SECRET, user="U2", channel="C2")
        listed = await bot.command("docs list", user="U2", channel="C2")
        [doc_id] = re.findall(r"`([0-9a-f-]{36})` reorg\.md", listed)
        refused = await bot.command(f"docs promote {doc_id} general", user="U1", channel="C2")
        shared = await bot.command(f"docs promote {doc_id} general", user="U2", channel="C2")
        asked = await bot.mention(SECRET_QUESTION, channel="C1")
        answer = (await bot.bot_messages(asked))[-1]
        quota = await bot.command("quota set user-uploads 5000", admin=True)
        [lore] = [c for scope in bot.fake.commands.values() for c in scope if c["name"] == "lore"]
    assert "Only the person who shared that file" in refused
    assert "Shared reorg.md with" in shared and "February 3" in answer.text
    assert "Daily user uploads limit set to 5,000 tokens." in quota
    quota_set = _option(_option(lore, "quota"), "set")
    assert [c["value"] for c in _option(quota_set, "scope")["choices"]] == [
        "user",
        "workspace",
        "user-uploads",
        "workspace-uploads",
    ]
    promote = _option(_option(lore, "docs"), "promote")
    assert [o["name"] for o in promote["options"]] == ["id", "namespace"]


def _option(node: dict[str, Any], name: str) -> dict[str, Any]:
    return next(o for o in node["options"] if o["name"] == name)


async def test_admins_replace_members_files_and_members_do_not(
    sqlite_url: str, tmp_path: Path, embedder: Any
) -> None:
    async with world(sqlite_url, tmp_path, embedder) as (fake, groq, harness):
        fake.add_role("Managers", members=("U5",), permissions=MANAGE_GUILD)
        lore_admins = fake.add_role("Lore Admins", members=("U6",))
        async with running(fake, groq, harness, admin_role=str(lore_admins)) as bot:
            said = {}
            for user, text in (
                ("U1", HANDBOOK),
                ("U6", HANDBOOK_V2),
                ("U5", HANDBOOK),
                ("U2", HANDBOOK_V2),
            ):
                thread = await bot.upload("handbook.md", text, user=user)
                said[user] = (await bot.bot_messages(thread))[-1].text
        titles = await _titles(bot)
    assert "It replaced the earlier version" in said["U6"]  # the DISCORD_ADMIN_ROLE role (id)
    assert "It replaced the earlier version" in said["U5"]  # Manage Server, through a role
    assert "Someone else's handbook.md stays as it is" in said["U2"]
    assert titles == ["handbook.md", "handbook.md"]
