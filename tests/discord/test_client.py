"""The Discord client against FakeDiscord: restarts, rate limits, failures, who it answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select, text

from adapters.discord.actions import NAMES as MENUS
from bot import process
from bot.discord_runner import run_discord
from bot.settings import Settings
from core.db.models import Feedback
from core.wording import ANSWER_FAILED as FAILURE
from tests.discord.driver import (
    DiscordDriver,
    custom_ids,
    start_client,
    stop_client,
    to_bot_message,
)
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.harness import BotHarness
from tests.scenarios.suite import HANDBOOK


@asynccontextmanager
async def world(
    database_url: str,
    folder: Path,
    embedder: Any,
    *,
    responder: Any = relevant_quoting_responder,
    chunk_delay: float = 0.0,
    **settings: object,
) -> AsyncIterator[tuple[FakeDiscord, FakeGroq, BotHarness]]:
    async with (
        FakeGroq(responder=responder, chunk_delay=chunk_delay) as groq,
        FakeDiscord() as fake,
    ):
        harness = await BotHarness.start(
            database_url, folder, embedder=embedder, groq_base_url=groq.base_url, **settings
        )
        try:
            yield fake, groq, harness
        finally:
            await harness.close()


@asynccontextmanager
async def running(
    fake: FakeDiscord, groq: FakeGroq, harness: BotHarness
) -> AsyncIterator[DiscordDriver]:
    client, task = await start_client(fake, harness.container)
    try:
        yield DiscordDriver(fake, client, harness.container, groq)
    finally:
        await stop_client(client, task)


async def test_feedback_buttons_work_after_a_restart(sqlite_url, tmp_path, embedder) -> None:
    async with world(sqlite_url, tmp_path, embedder) as (fake, groq, harness):
        async with running(fake, groq, harness) as bot:
            await bot.upload("handbook.md", HANDBOOK)
            thread = await bot.mention("How many days of paid vacation do employees get?")
            assert (await bot.bot_messages(thread))[-1].has_feedback_buttons
        assert fake.identifies == 1
        async with running(fake, groq, harness) as bot:  # a new process: nothing in memory
            assert fake.identifies == 2
            await bot.click_feedback(thread, 1, user="U7")
            answer = fake.messages_in(int(thread.thread))[-1]
            labels = [c["label"] for row in answer.payload["components"] for c in row["components"]]
            assert labels == ["👍 1", "👎 0"]
    async with harness.container.database.session() as db:
        assert list((await db.execute(select(Feedback.value))).scalars()) == [1]


async def test_a_429_is_waited_out(sqlite_url, tmp_path, embedder) -> None:
    async with (
        world(sqlite_url, tmp_path, embedder) as (fake, groq, harness),
        running(fake, groq, harness) as bot,
    ):
        await bot.upload("handbook.md", HANDBOOK)
        fake.rate_limit("POST", r"/channels/\d+/messages", times=1, retry_after=0.4)
        thread = await bot.mention("How many days of paid vacation do employees get?")
        messages = await bot.bot_messages(thread)
    [(_, path, limited_at)] = fake.rate_limited
    assert messages and "25 days" in messages[-1].text and messages[-1].sources
    later = [t for m, p, t in fake.timed_requests if m == "POST" and p == path and t > limited_at]
    assert later and later[0] - limited_at >= 0.4  # retried after retry_after, not before


async def test_a_failure_after_a_mention_ends_with_a_plain_message(
    sqlite_url, tmp_path, embedder
) -> None:
    async with (
        world(sqlite_url, tmp_path, embedder) as (fake, groq, harness),
        running(fake, groq, harness) as bot,
    ):
        await bot.upload("handbook.md", HANDBOOK)
        async with harness.container.database.engine.begin() as conn:  # break the usage ledger
            await conn.execute(text("DROP TABLE token_usage"))
        thread = await bot.mention("How many days of paid vacation do employees get?")
        messages = await bot.bot_messages(thread)
    assert [m.text for m in messages] == [FAILURE]
    assert messages[0].edits >= 1  # the placeholder became the notice: no dangling "Searching"


async def test_streams_by_editing_the_placeholder(sqlite_url, tmp_path, embedder) -> None:
    async with (
        world(sqlite_url, tmp_path, embedder, chunk_delay=0.03) as (fake, groq, harness),
        running(fake, groq, harness) as bot,
    ):
        await bot.upload("handbook.md", HANDBOOK)
        thread = await bot.mention("How are travel expenses reimbursed?")
        [answer] = fake.messages_in(int(thread.thread))
    assert answer.history[0]["content"].startswith("🔎 Searching")
    assert any(h["content"].endswith("▌") for h in answer.history)  # streamed text so far
    final = to_bot_message(answer)
    assert "14 days" in final.text and final.sources == ["handbook.md"]
    assert "▌" not in final.text and final.has_feedback_buttons


async def test_long_answers_are_split_with_sources_on_the_last(
    sqlite_url, tmp_path, embedder
) -> None:
    long = "\n\n".join(
        f"Part {i}: travel expenses are reimbursed [1]. " + "More. " * 120 for i in range(6)
    )
    async with (
        world(sqlite_url, tmp_path, embedder, responder=lambda m: long) as (fake, groq, harness),
        running(fake, groq, harness) as bot,
    ):
        await bot.upload("handbook.md", HANDBOOK)
        thread = await bot.mention("How are travel expenses reimbursed?")
        messages = await bot.bot_messages(thread)
    assert len(messages) >= 3
    assert all(
        len(fake_m.payload["content"]) <= 2000 for fake_m in fake.messages_in(int(thread.thread))
    )
    assert [bool(m.sources) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert messages[-1].has_feedback_buttons and not messages[0].has_feedback_buttons


async def test_whom_the_bot_answers(sqlite_url, tmp_path, embedder) -> None:
    async with (
        world(sqlite_url, tmp_path, embedder) as (fake, groq, harness),
        running(fake, groq, harness) as bot,
    ):
        other_bot = fake.message_payload(
            fake.channel_id("C1"), "helper-bot", f"<@{fake.bot_id}> hi", mention_bot=True
        )
        other_bot["author"]["bot"] = True
        await bot._deliver(other_bot)
        await bot._deliver(fake.message_payload(fake.channel_id("C1"), "U1", "no mention"))
        assert fake.threads_by_message == {} and not fake.messages_in(fake.channel_id("C1"))
        assert not any(p.endswith("/typing") for _, p in fake.requests)
        await bot.upload("handbook.md", HANDBOOK)
        dm = fake.dm_payload("U3", "How are travel expenses reimbursed?")
        await bot._deliver(dm)
        [reply] = fake.messages_in(int(dm["channel_id"]))
        # U3 shares no server with the bot: not one of the organisation's people.
        assert "not enabled here" in reply.payload["content"]
        assert "guild_id" not in reply.payload


async def test_oversized_attachment_is_refused_without_download(
    sqlite_url, tmp_path, embedder
) -> None:
    async with (
        world(sqlite_url, tmp_path, embedder, MAX_UPLOAD_MB="0.01") as (fake, groq, harness),
        running(fake, groq, harness) as bot,
    ):
        thread = await bot.upload("big.md", b"x" * 50_000)
        [message] = await bot.bot_messages(thread)
    assert message.text == "I can't index big.md: it is 48.8 KB and the limit is 10.2 KB."
    assert not any(path.startswith("/attachments/") for _, path in fake.requests)


async def test_run_discord_syncs_commands_and_stops(sqlite_url, tmp_path, embedder) -> None:
    async with world(sqlite_url, tmp_path, embedder) as (fake, _groq, harness):
        settings = Settings(
            _env_file=None,
            DATABASE_URL=sqlite_url,
            DISCORD_TOKEN="fake-token",
            DISCORD_API_URL=fake.api_url,
            DISCORD_GATEWAY_URL=fake.gateway_url,
            DISCORD_GUILD_ID=fake.guild_id,
        )
        stop = asyncio.Event()
        process.point_discord_at(settings.discord_api_url, settings.discord_gateway_url)  # as `run`
        runner = asyncio.create_task(run_discord(harness.container, settings, stop=stop))
        await asyncio.wait_for(fake.ready.wait(), 10)
        for _ in range(200):
            if str(fake.guild_id) in fake.commands:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(runner, 10)
    synced = {c["name"]: c for c in fake.commands[str(fake.guild_id)]}
    assert set(synced) == {"lore", *MENUS}
    assert all(synced[name]["type"] == 3 for name in MENUS)  # message context menus
    lore = synced["lore"]
    assert {o["name"] for o in lore["options"]} == {
        "ask",
        "help",
        "usage",
        "namespace",
        "docs",
        "quota",
        "gaps",
        "retention",
        "digest",
        "channel",
    }


async def test_admin_role_and_ask_command(sqlite_url, tmp_path, embedder) -> None:
    async with world(sqlite_url, tmp_path, embedder) as (fake, groq, harness):
        fake.add_role("Lore Admins", members=("U5",))
        client, task = await start_client(fake, harness.container, admin_role="Lore Admins")
        bot = DiscordDriver(fake, client, harness.container, groq)
        try:
            created = await bot.command("namespace create ops", user="U5", admin=False)
            refused = await bot.command("namespace create sales", user="U6", admin=False)
            await bot.upload("handbook.md", HANDBOOK)
            asked = await bot.command("ask How are travel expenses reimbursed?", user="U6")
        finally:
            await stop_client(client, task)
    assert "Created namespace" in created and "Only workspace admins" in refused
    assert "14 days" in asked and "handbook.md" in asked
    record = list(fake.interactions.values())[-1]
    assert record.callbacks[0] == {"type": 5, "data": {"flags": 64}}  # deferred, ephemeral
    assert any(i.startswith("lore:fb:up:") for i in custom_ids_of(record.original))


def custom_ids_of(payload: dict[str, Any] | None) -> list[str]:
    from tests.fakes.discord_server import PostedMessage

    return custom_ids(PostedMessage(payload or {}))


async def test_without_thread_permission_it_answers_in_the_channel(
    sqlite_url, tmp_path, embedder
) -> None:
    async with (
        world(sqlite_url, tmp_path, embedder) as (fake, groq, harness),
        running(fake, groq, harness) as bot,
    ):
        fake.refuse_threads = True
        channel = fake.channel_id("C2")
        attachment = fake.add_attachment("handbook.md", HANDBOOK)
        for content, attachments in (("", [attachment]), ("How many vacation days?", [])):
            await bot._deliver(
                fake.message_payload(
                    channel,
                    "U1",
                    f"<@{fake.bot_id}> {content}",
                    mention_bot=True,
                    attachments=attachments,
                )
            )
        indexed, answer = fake.messages_in(channel)
    assert not fake.threads_by_message
    assert "Indexed handbook.md" in to_bot_message(indexed).text
    assert "25 days" in to_bot_message(answer).text
