"""AdminService runs typed commands: no text to re-parse, checks in order, every refusal and
admin action audited (real database through the migrations)."""

from __future__ import annotations

from sqlalchemy import select

from core.admin import AdminCommand
from core.commands import REGISTRY, ChannelArg, Request, bind, parse_text
from core.db.models import AuditLog, Channel
from core.types import Platform
from tests.harness import BotHarness


async def run(bot: BotHarness, request: Request, *, admin: bool = True, workspace: str = "W1"):
    return await bot.container.admin.execute(
        AdminCommand(
            platform=Platform.SLACK,
            workspace_id=workspace,
            channel_id="C1",
            user_id="U1",
            request=request,
            is_platform_admin=admin,
        )
    )


async def test_typed_commands_audit_and_refuse_in_order(database_url, tmp_path, embedder) -> None:
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        create = REGISTRY.get(("namespace", "create"))
        bind_ = REGISTRY.get(("namespace", "bind"))
        assert create is not None and bind_ is not None
        made = await run(bot, bind(create, {"name": "HR", "description": "People"}))
        assert made.ok and made.text.startswith("Created namespace hr.")
        bound = await run(bot, bind(bind_, {"name": "hr", "channel": ChannelArg("C0PEOPLE")}))
        assert bound.ok and bound.text == "#C0PEOPLE now searches hr.", bound.text
        # the admin check comes first: a non-admin learns nothing about the arguments
        refused = await run(bot, bind(bind_, {"name": "no such!"}), admin=False)
        assert not refused.ok and refused.text == "Only workspace admins can do that."
        wrong = await run(bot, parse_text("namespace delete"))
        assert not wrong.ok and wrong.text == "Which namespace? Give its name."
        unknown = await run(bot, parse_text("frobnicate"))
        assert not unknown.ok and unknown.text.startswith("I don't know frobnicate.")
        assert "Lorekeeper commands" in unknown.text
        helped = await run(bot, parse_text("help"))
        assert helped.ok and "/lore ask QUESTION" in helped.text
        async with bot.container.database.transaction() as conn:
            audit = (
                await conn.execute(select(AuditLog.command, AuditLog.outcome, AuditLog.arguments))
            ).all()
            channels = (await conn.execute(select(Channel.external_id))).scalars().all()
    finally:
        await bot.close()
    assert ("namespace create", "ok", {"args": {"name": "hr", "description": "People"}}) in audit
    assert ("namespace bind", "ok", {"args": {"name": "hr", "channel": "C0PEOPLE"}}) in audit
    assert ("namespace bind", "refused", {"args": ["no such!"]}) in audit
    assert ("namespace delete", "failed", {"args": []}) in audit
    assert "C0PEOPLE" in channels
