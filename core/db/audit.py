"""The audit log: who ran which admin command, with what arguments, and the outcome."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select

from core.db.access import Database
from core.db.models import AuditLog
from core.db.types import new_id, utcnow


class AuditStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record(
        self,
        *,
        workspace_id: uuid.UUID | None,
        user_id: uuid.UUID | None,
        actor: str,
        command: str,
        arguments: dict[str, Any],
        outcome: str,
        detail: str | None = None,
    ) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                insert(AuditLog),
                [
                    {
                        "id": new_id(),
                        "workspace_id": workspace_id,
                        "user_id": user_id,
                        "actor": actor[:128],
                        "command": command[:64],
                        "arguments": arguments,
                        "outcome": outcome[:16],
                        "detail": detail,
                        "created_at": utcnow(),
                    }
                ],
            )

    async def recent(self, workspace_id: uuid.UUID, *, limit: int = 20) -> list[dict[str, Any]]:
        stmt = (
            select(AuditLog)
            .where(AuditLog.workspace_id == workspace_id)
            .order_by(AuditLog.created_at.desc())
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = await conn.execute(stmt)
            return [
                {
                    "actor": r.actor,
                    "command": r.command,
                    "arguments": r.arguments,
                    "outcome": r.outcome,
                    "detail": r.detail,
                    "created_at": r.created_at,
                }
                for r in rows
            ]
