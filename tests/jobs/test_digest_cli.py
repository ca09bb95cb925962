"""`lorekeeper jobs run gap-digest` through its handler on a temp SQLite: it reaches the owners
of both platforms through the settings' tokens (the Slack Web API client, a Discord REST login),
against the fake Slack and the fake Discord."""

from __future__ import annotations

import asyncio

from bot.cli import build_parser
from bot.ops_commands import jobs_command
from core.db import migrate
from core.db.access import Database
from core.db.digests import DigestStore
from core.db.engine import create_engine
from core.db.identity import IdentityStore
from core.db.knowledge import KnowledgeStore
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack


async def _owner(database: Database, platform: str, workspace: str, user: str) -> None:
    identity = IdentityStore(database)
    ws = await identity.workspace(platform, workspace)
    person = await identity.user(ws.id, user)
    knowledge = KnowledgeStore(database)
    ns = await knowledge.create_namespace(ws.id, "team")
    await knowledge.set_owner(ns.id, person.id)
    await DigestStore(database).set_enabled(person.id, True)


async def test_jobs_run_gap_digest_uses_both_platforms(tmp_path, monkeypatch, capsys) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lk.db'}"
    for name in ("DATABASE_URL", "MILVUS_URI", "LOREKEEPER_DATA_DIR", "GROQ_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    await asyncio.to_thread(migrate.upgrade, url)
    async with FakeSlack() as slack, FakeDiscord() as discord:
        engine = create_engine(url)
        try:
            database = Database(engine)
            await _owner(database, "slack", slack.team, "U0ANA")
            await _owner(database, "discord", str(discord.guild_id), discord.user("Ana")["id"])
            await _owner(database, "teams", "X1", "nobody")  # a platform with no token
        finally:
            await engine.dispose()
        env_file = tmp_path / "lk.env"
        env_file.write_text(
            f"DATABASE_URL={url}\nMILVUS_URI={tmp_path / 'milvus.db'}\n"
            f"LOREKEEPER_DATA_DIR={tmp_path}\nSLACK_BOT_TOKEN={slack.bot_token}\n"
            f"SLACK_API_URL={slack.api_url}\nDISCORD_TOKEN=fake-bot-token\n"
            f"DISCORD_API_URL={discord.api_url}\n"
        )
        args = build_parser().parse_args(["--env-file", str(env_file), "jobs", "run", "gap-digest"])
        assert await jobs_command(args) == 0
    out = capsys.readouterr().out
    # both platforms' owners are reachable (no gaps this week: nothing to send); not the third
    assert "gap-digest: digests_sent=0, owners_without_gaps=2" in out, out
    assert "owners_unreachable=1, failed=0" in out, out
    assert ("GET", "/users/@me") in discord.requests  # the REST login
