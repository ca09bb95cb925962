"""The audit log: who ran which admin command, with what arguments, and the outcome."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import AuditLog
from core.db.types import new_id, utcnow


class AuditStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

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
        async with self._sessions() as db, db.begin():
            await db.execute(
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
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(AuditLog)
                    .where(AuditLog.workspace_id == workspace_id)
                    .order_by(AuditLog.created_at.desc())
                    .limit(limit)
                )
            ).scalars()
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
