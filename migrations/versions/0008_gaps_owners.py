"""Gap reports and namespace owners: an answer remembers how it was made (``messages.mode``:
llm, extractive, abstain, refused), so the questions the bot could not answer can be listed;
a namespace can name an owner (a user of its workspace) who is asked about its gaps.

Existing abstentions (the bot's fixed "I couldn't find that in ..." sentence) are marked.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mode', sa.String(length=16), nullable=True))

    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_namespaces_owner_id'), ['owner_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_namespaces_owner_id_users'),
            'users',
            ['owner_id'],
            ['id'],
            ondelete='SET NULL',
        )
    if not context.is_offline_mode():
        op.execute(
            "UPDATE messages SET mode = 'abstain' WHERE role = 'assistant' "
            "AND model IS NULL AND content LIKE 'I couldn''t find that in %'"
        )


def downgrade() -> None:
    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_namespaces_owner_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_namespaces_owner_id'))
        batch_op.drop_column('owner_id')

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('mode')
