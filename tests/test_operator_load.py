"""`lorekeeper ingest` goes through the upload service: what an operator loads is versioned by
its source and audited like a chat upload, refusals included. Real databases and milvus-lite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db.models import AuditLog, Document
from core.errors import UnsupportedFile
from tests.harness import BotHarness

HANDBOOK = b"# Handbook\n\nEmployees receive 25 days of paid vacation per year.\n"


async def test_an_operator_load_is_versioned_and_audited(database_url, tmp_path, embedder) -> None:
    bot = await BotHarness.start(database_url, tmp_path, embedder=embedder)
    try:
        c = bot.container
        local = await c.identity.workspace("console", "local", name="local")
        owner = await c.organisation.owner(local)
        ns = await c.knowledge.ensure_namespace(owner.id, "handbook")
        source = "file:///srv/docs/handbook.md"
        first = await c.uploads.load(
            HANDBOOK,
            "handbook.md",
            namespace=ns,
            workspace_id=local.id,
            actor="cli",
            identity=source,
        )
        edited = await c.uploads.load(
            HANDBOOK.replace(b"25", b"30"),
            "handbook.md",
            namespace=ns,
            workspace_id=local.id,
            actor="cli",
            identity=source,
        )
        assert list(edited.replaced) == [first.document.id]
        with pytest.raises(UnsupportedFile):
            await c.uploads.load(
                b"MZ\x90\x00" + bytes(200),
                "tool.exe",
                namespace=ns,
                workspace_id=local.id,
                actor="cli",
            )
        async with c.database.session() as db:
            audit = (
                await db.execute(
                    select(AuditLog.actor, AuditLog.command, AuditLog.outcome).order_by(
                        AuditLog.created_at
                    )
                )
            ).all()
            titles = (await db.execute(select(Document.title))).scalars().all()
        assert titles == ["handbook.md"]  # the edit replaced its own older version
        assert [tuple(row) for row in audit] == [
            ("cli", "ingest", "ok"),
            ("cli", "ingest", "ok"),
            ("cli", "replace", "ok"),
            ("cli", "ingest", "failed"),
        ]
    finally:
        await bot.close()
