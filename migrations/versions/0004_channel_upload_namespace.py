"""Let a channel name the namespace its uploads go to (`/lore namespace uploads NAME`); before
this, files dropped in a channel bound to several namespaces went to the first one by name.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 19:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('channel_namespaces', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('receives_uploads', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('channel_namespaces', schema=None) as batch_op:
        batch_op.drop_column('receives_uploads')
