"""Questions left alone in autoanswer channels reach the gap reports: ``auto_answers`` keeps
the text and thread of a question the sources did not answer, and an index on ``created_at``
for the retention job.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("auto_answers") as batch:
        batch.add_column(sa.Column("question", sa.Text(), nullable=True))
        batch.add_column(sa.Column("thread_key", sa.String(length=128), nullable=True))
    op.create_index("ix_auto_answers_created_at", "auto_answers", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_auto_answers_created_at", table_name="auto_answers")
    with op.batch_alter_table("auto_answers") as batch:
        batch.drop_column("thread_key")
        batch.drop_column("question")
