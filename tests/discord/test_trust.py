"""What outside text and outside people cannot do through the Discord adapter: ping or link
from a document or a file name, pass for an admin by naming a role like the configured one,
or vote on another workspace's answer."""

from __future__ import annotations

import json
import logging
import re
import uuid

from sqlalchemy import func, select

from core.db.models import Feedback, Message, Session, Workspace
from tests.discord.conftest import running_discord_bot
from tests.discord.driver import DiscordDriver, custom_ids, start_client, stop_client
from tests.fakes.discord_server import FakeDiscord, JsonDict, PostedMessage
from tests.fakes.groq_server import FakeGroq, relevant_quoting_responder
from tests.harness import BotHarness
from tests.scenarios.suite import HANDBOOK

HOSTILE_NAME = "<!channel> [x](https://evil.example) **big**.md"
HOSTILE_TEXT = (
    b"# IT help\n\n"
    b"Reset your password on [the IT portal](https://it.example.com) and tell <!here> "
    b"@everyone @here <@123456> <@&654321> about the password reset.\n"
)
MASKED = re.compile(r"\]\(\s*<?https?://(?:it|evil)\.example")
QUESTION = "How do I reset my password?"


def message_bodies(fake: FakeDiscord) -> list[JsonDict]:
    """Every message the bot sent or edited: channel messages, interaction responses (their
    ``data``), webhook followups and edits. Deferrals carry no message and are left out."""
    out = []
    for _method, path, body in fake.bodies:
        message = body.get("data") if path.endswith("/callback") else body
        if isinstance(message, dict) and {"content", "embeds", "components"} & message.keys():
            out.append(message)
    return out


def assert_nothing_pings(fake: FakeDiscord) -> None:
    bodies = message_bodies(fake)
    assert bodies
    for body in bodies:
        mentions = body.get("allowed_mentions")
        assert mentions is not None and mentions.get("parse") == [], body
        assert not mentions.get("users") and not mentions.get("roles"), body
        assert not mentions.get("replied_user"), body


async def test_nothing_from_a_document_or_a_file_name_pings_or_links(
    sqlite_url, tmp_path, embedder
) -> None:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as bot:
        thread = await bot.upload(HOSTILE_NAME, HOSTILE_TEXT)
        await bot.say_in_thread(thread, QUESTION, mention=True)
        await bot.command("docs list", admin=True)
        await bot.command(f"ask {QUESTION}")
        await bot.click_feedback(thread, 1, user="U2")
        fake = bot.fake
    assert_nothing_pings(fake)
    shown = [json.dumps(b, ensure_ascii=False) for b in message_bodies(fake)]
    assert not any(MASKED.search(s) for s in shown), [s for s in shown if MASKED.search(s)]
    contents = "\n".join(str(b.get("content") or "") for b in message_bodies(fake))
    assert "the IT portal (<https://it.example.com>)" in contents  # the URL is visible
    assert "x (<https://evil.example>) \\*\\*big\\*\\*.md" in contents  # the file name, escaped


async def test_a_vote_from_another_workspace_is_refused(sqlite_url, tmp_path, embedder) -> None:
    async with running_discord_bot(sqlite_url, tmp_path, embedder) as bot:
        await bot.upload("handbook.md", HANDBOOK)
        thread = await bot.mention("How are travel expenses reimbursed?")
        bot.fake.join("U3")  # a member of the server: their DMs are answered
        await bot._deliver(bot.fake.dm_payload("U3", "How are travel expenses reimbursed?"))
        dm_answer = await _answer_of_workspace(bot, "dm-")
        assert dm_answer != "None"
        shown = next(
            m
            for m in reversed(bot.fake.messages_in(int(thread.thread)))
            if any(i.startswith("lore:fb:") for i in custom_ids(m))
        )
        own = next(i for i in custom_ids(shown) if i.startswith("lore:fb:up:"))
        # The same buttons, carrying the id of the answer given in U3's direct messages.
        forged = PostedMessage(json.loads(json.dumps(shown.payload).replace(own[11:], dm_answer)))
        click = bot.fake.click_payload(forged, f"lore:fb:up:{dm_answer}", user="U4")
        record = await bot.fake.interact(click)
        await bot.settle()
        async with bot.container.database.session() as db:
            votes = (await db.execute(select(func.count()).select_from(Feedback))).scalar_one()
        fake = bot.fake
    assert votes == 0
    [told] = record.followups
    assert "couldn't record that vote" in told["content"] and told["flags"] & 64
    assert_nothing_pings(fake)


async def _answer_of_workspace(bot: DiscordDriver, prefix: str) -> str:
    """The id of the answer stored in the (first) workspace whose platform id has ``prefix``."""
    async with bot.container.database.session() as db:
        stmt = (
            select(Message.id)
            .join(Session, Session.id == Message.session_id)
            .join(Workspace, Workspace.id == Session.workspace_id)
            .where(Message.role == "assistant", Workspace.external_id.startswith(prefix))
        )
        return str((await db.execute(stmt)).scalars().first())


async def test_the_admin_role_is_matched_by_id(sqlite_url, tmp_path, embedder, caplog) -> None:
    async with FakeGroq(responder=relevant_quoting_responder) as groq, FakeDiscord() as fake:
        admins = fake.add_role("Lore Admins", members=("U5",))
        fake.add_role(str(admins), members=("U6",))  # a role merely named like the id
        fake.add_role("999999", members=("U7",))  # named like an id no role has
        harness = await BotHarness.start(
            sqlite_url, tmp_path, embedder=embedder, groq_base_url=groq.base_url
        )
        try:
            by_id = await _creates(fake, harness, groq, str(admins), ("U5", "U6"))
            no_such_id = await _creates(fake, harness, groq, "999999", ("U7",))
            caplog.set_level(logging.WARNING)
            by_name = await _creates(fake, harness, groq, "lore admins", ("U5", "U6"))
        finally:
            await harness.close()
    assert by_id == {"U5": True, "U6": False}
    assert no_such_id == {"U7": False}
    assert by_name == {"U5": True, "U6": False}
    warned = [r.getMessage() for r in caplog.records if "role *named*" in r.getMessage()]
    assert len(warned) == 1 and "DISCORD_ADMIN_ROLE" in warned[0]


async def _creates(
    fake: FakeDiscord, harness: BotHarness, groq: FakeGroq, role: str, users: tuple[str, ...]
) -> dict[str, bool]:
    """Whether each user may create a namespace when DISCORD_ADMIN_ROLE is ``role``."""
    client, task = await start_client(fake, harness.container, admin_role=role)
    bot = DiscordDriver(fake, client, harness.container, groq)
    try:
        out = {}
        for user in users:
            said = await bot.command(f"namespace create ns-{uuid.uuid4().hex[:8]}", user=user)
            out[user] = "Created namespace" in said
        return out
    finally:
        await stop_client(client, task)
