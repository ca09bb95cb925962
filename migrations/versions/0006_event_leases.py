"""Event claims are leases: a platform event id is claimed until its lease expires and marked
completed once answered, so a retry can take over an event whose claimant died.

Events recorded before leases count as completed when they were received.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

import core.db.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('lease_expires_at', core.db.types.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column('completed_at', core.db.types.UTCDateTime(), nullable=True))
    if not context.is_offline_mode():
        op.execute('UPDATE processed_events SET completed_at = received_at')


def downgrade() -> None:
    with op.batch_alter_table('processed_events', schema=None) as batch_op:
        batch_op.drop_column('completed_at')
        batch_op.drop_column('lease_expires_at')
