"""Owners who get asked: one row per thread whose question was put to a namespace owner
(``owner_asks``), so the owner is mentioned once per thread and offered "Save thread" once
when they answer there.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "owner_asks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("answer_id", sa.Uuid(), nullable=True),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("asked_by", sa.Uuid(), nullable=True),
        sa.Column("asked_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("save_offered_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["sessions.id"],
            name=op.f("fk_owner_asks_session_id_sessions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["messages.id"],
            name=op.f("fk_owner_asks_answer_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_owner_asks_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["asked_by"],
            ["users.id"],
            name=op.f("fk_owner_asks_asked_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owner_asks")),
        sa.UniqueConstraint("session_id", name=op.f("uq_owner_asks_session_id")),
    )
    with op.batch_alter_table("owner_asks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_owner_asks_answer_id"), ["answer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_owner_asks_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_owner_asks_asked_by"), ["asked_by"], unique=False)


def downgrade() -> None:
    op.drop_table("owner_asks")
