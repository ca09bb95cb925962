"""`lorekeeper namespaces` shows where each namespace is bound, on every platform, and
`lorekeeper workspaces` which workspaces were seen and whether they belong."""

from __future__ import annotations

from bot.runtime import stores
from tests.cli.conftest import HANDBOOK


async def _bind_on(lorekeeper, platform: str, workspace: str, name: str, channel: str) -> None:
    """What `/lore namespace bind handbook` in that channel stores (the organisation's one)."""
    async with stores(str(lorekeeper.env_file)) as c:
        ws = await c.identity.workspace(platform, workspace, name=name)
        owner = await c.organisation.owner(ws)
        ch = await c.identity.channel(ws.id, f"{platform}-{channel}", name=channel)
        ns = await c.knowledge.namespace(owner.id, "handbook")
        assert ns is not None
        await c.knowledge.bind(ch.id, ns.id)


async def test_namespaces_show_where_they_are_bound_and_workspaces_whether_they_belong(
    lorekeeper,
) -> None:
    lorekeeper.env_file.write_text(
        lorekeeper.env_file.read_text() + "SLACK_TEAM_IDS=T1\nDISCORD_GUILD_IDS=111\n"
    )
    path = lorekeeper.write("docs/handbook.md", HANDBOOK)
    assert (await lorekeeper("ingest", str(path), "-n", "handbook")).code == 0
    await _bind_on(lorekeeper, "slack", "T1", "Acme", "help")
    await _bind_on(lorekeeper, "discord", "111", "Acme Discord", "questions")

    listed = await lorekeeper("namespaces")

    assert listed.code == 0, listed
    lines = listed.out.splitlines()
    assert lines[0] == "handbook\t1 documents"
    assert sorted(lines[1:]) == [
        "  bound: discord Acme Discord #questions",
        "  bound: slack Acme #help",
    ]
    async with stores(str(lorekeeper.env_file)) as c:  # a server outside the organisation
        await c.identity.workspace("discord", "999", name="Strangers")
    seen = await lorekeeper("workspaces")
    assert seen.code == 0, seen
    rows = {tuple(line.split("\t")) for line in seen.out.splitlines()}
    assert ("slack", "T1", "Acme", "in the organisation") in rows
    assert ("discord", "111", "Acme Discord", "in the organisation") in rows
    assert ("discord", "999", "Strangers", "not enabled") in rows
    assert ("console", "local", "local", "in the organisation") in rows
