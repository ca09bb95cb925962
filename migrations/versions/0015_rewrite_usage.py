"""Token usage of a question rewritten in its documents' words: ``token_usage.operation`` may
be ``rewrite`` (the LLM call the answer makes when the evidence gate refuses a question).

Downgrading counts those rows as ``condense``, the other call that writes a search query.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPERATIONS_BEFORE = "operation IN ('chat', 'condense', 'embedding', 'ingest')"
_OPERATIONS = "operation IN ('chat', 'condense', 'rewrite', 'embedding', 'ingest')"


def upgrade() -> None:
    with op.batch_alter_table("token_usage", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_token_usage_operation"), type_="check")
        batch_op.create_check_constraint("operation", _OPERATIONS)


def downgrade() -> None:
    with op.batch_alter_table("token_usage", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_token_usage_operation"), type_="check")
    op.execute("UPDATE token_usage SET operation = 'condense' WHERE operation = 'rewrite'")
    with op.batch_alter_table("token_usage", schema=None) as batch_op:
        batch_op.create_check_constraint("operation", _OPERATIONS_BEFORE)
