"""One organisation, every entry point: the CLI's namespaces reach Slack and Discord, a
workspace outside the organisation is turned away, and an existing database is adopted without
losing a binding, a document or a usage row. Real databases, milvus-lite and embedder."""

from __future__ import annotations

from sqlalchemy import func, select

from core.db.models import ChannelNamespace, Document, Namespace, TokenUsage
from core.types import Platform
from tests.harness import BotHarness

HANDBOOK = b"# Handbook\n\nEmployees receive 25 days of paid vacation per year.\n"
ONCALL = b"# On-call\n\nThe on-call engineer hands over every Monday at 10:00.\n"
VACATION = "How many days of paid vacation do employees get?"
HANDOVER = "When does the on-call engineer hand over?"


async def _cli_ingest(bot: BotHarness, namespace: str, name: str, data: bytes) -> None:
    """What `lorekeeper ingest` does: into the terminal workspace's knowledge owner."""
    c = bot.container
    local = await c.identity.workspace("console", "local", name="local")
    owner = await c.organisation.owner(local)
    ns = await c.knowledge.ensure_namespace(owner.id, namespace)
    await c.uploads.load(data, name, namespace=ns, workspace_id=local.id, actor="cli")


def _on(bot: BotHarness, platform: Platform, workspace: str) -> BotHarness:
    bot.platform, bot.workspace = platform, workspace
    return bot


async def test_a_namespace_filled_from_the_cli_answers_in_slack_and_discord(
    database_url, tmp_path, embedder
) -> None:
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        await _cli_ingest(bot, "handbook", "handbook.md", HANDBOOK)
        for platform, workspace in ((Platform.SLACK, "T1"), (Platform.DISCORD, "111")):
            _on(bot, platform, workspace)
            bound = await bot.admin("namespace bind handbook", channel="C-help")
            assert bound.ok and "now searches" in bound.text, bound.text
            answer = await bot.say(VACATION, channel="C-help", thread=f"T-{workspace}")
            assert "25 days" in answer.text and answer.citations
            listed = await bot.admin("namespace list", is_admin=False, channel="C-help")
            assert "handbook" in listed.text
        async with bot.container.database.session() as db:
            namespaces = (await db.execute(select(Namespace.name))).scalars().all()
        assert sorted(namespaces).count("handbook") == 1  # one, shared
    finally:
        await bot.close()


async def test_a_workspace_outside_the_organisation_is_told_and_sees_nothing(
    database_url, tmp_path, embedder
) -> None:
    bot = await BotHarness.start(
        database_url,
        tmp_path,
        embedder=embedder,
        SLACK_TEAM_IDS="T1",
        DISCORD_GUILD_IDS="111",
    )
    try:
        await _cli_ingest(bot, "handbook", "handbook.md", HANDBOOK)
        _on(bot, Platform.DISCORD, "999")  # a server that invited the bot
        answer = await bot.say(VACATION)
        assert answer.mode == "refused" and "not enabled here" in answer.text
        assert not answer.citations
        for command in ("namespace list", "namespace bind handbook", "docs list handbook"):
            result = await bot.admin(command)
            assert not result.ok and "not enabled here" in result.text, command
            assert "handbook" not in result.text
        refused = await bot.upload("notes.md", ONCALL)
        assert not refused.ok and "not enabled here" in refused.message
        _on(bot, Platform.SLACK, "T2")  # another Slack team
        assert "not enabled here" in (await bot.say(VACATION)).text
        _on(bot, Platform.SLACK, "T1")
        assert (await bot.admin("namespace bind handbook")).ok
        assert "25 days" in (await bot.say(VACATION, thread="T2")).text
        async with bot.container.database.session() as db:
            docs = (await db.execute(select(Document.title))).scalars().all()
        assert docs == ["handbook.md"]  # the refused upload stored nothing
    finally:
        await bot.close()


async def test_separate_tenants_keep_strict_isolation(database_url, tmp_path, embedder) -> None:
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder, TENANCY="workspace")
    try:
        _on(bot, Platform.SLACK, "T1")
        await bot.admin("namespace uploads general")
        await bot.upload("handbook.md", HANDBOOK)
        assert "25 days" in (await bot.say(VACATION)).text
        _on(bot, Platform.SLACK, "T2")
        other = await bot.say(VACATION, thread="T2")
        assert "25 days" not in other.text and not other.citations
    finally:
        await bot.close()


async def test_an_existing_database_is_adopted_without_losing_anything(
    database_url, tmp_path, embedder
) -> None:
    """Data written per workspace (as before organisations) joins the organisation on first
    use: same-named namespaces merge, others change owner, bindings and usage follow."""
    before = await BotHarness.start(database_url, tmp_path, embedder=embedder, TENANCY="workspace")
    try:
        _on(before, Platform.SLACK, "T1")
        await before.admin("namespace create hr")
        await before.admin("namespace uploads hr", channel="C-hr")
        await before.upload("oncall.md", ONCALL, channel="C-hr")
        await before.admin("namespace uploads general")
        await before.upload("handbook.md", HANDBOOK)
        assert "Monday" in (await before.say(HANDOVER, channel="C-hr")).text
        _on(before, Platform.CONSOLE, "local")
        await before.admin("namespace uploads general", channel="console")
        await before.upload("parking.md", b"Parking is behind building B.\n", channel="console")
        async with before.container.database.session() as db:
            counts = await _counts(db)
    finally:
        await before.close()

    after = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        _on(after, Platform.SLACK, "T1")
        assert "Monday" in (await after.say(HANDOVER, channel="C-hr", thread="T2")).text
        assert "25 days" in (await after.say(VACATION, thread="T3")).text
        parking = await after.say("Where is parking?", thread="T4")
        assert "building B" in parking.text  # the terminal's general merged into the same one
        async with after.container.database.session() as db:
            names = sorted((await db.execute(select(Namespace.name))).scalars().all())
            adopted = await _counts(db)
        assert names.count("general") == 1 and names.count("hr") == 1
        assert adopted["documents"] == counts["documents"] == 3
        assert adopted["bindings"] == counts["bindings"]
        assert adopted["usage"] >= counts["usage"]  # nothing lost (the questions above added)
        assert adopted["usage_without_namespace"] == counts["usage_without_namespace"]
    finally:
        await after.close()


async def _counts(db) -> dict[str, int]:
    async def n(stmt) -> int:
        return int((await db.execute(stmt)).scalar_one())

    return {
        "documents": await n(select(func.count()).select_from(Document)),
        "bindings": await n(select(func.count()).select_from(ChannelNamespace)),
        "usage": await n(select(func.count()).select_from(TokenUsage)),
        "usage_without_namespace": await n(
            select(func.count()).select_from(TokenUsage).where(TokenUsage.namespace_id.is_(None))
        ),
    }
