"""Where a document was uploaded, kept on the document: the channel and the thread
(``documents.channel_id``, ``documents.thread_key``), so the deletion of that thread or channel
on the platform finds the document however long ago its conversation was forgotten.

Existing documents take both from their conversation (session), when it is still there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('thread_key', sa.String(length=128), nullable=True))
        batch_op.create_index(batch_op.f('ix_documents_channel_id'), ['channel_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_documents_channel_id_channels'),
            'channels',
            ['channel_id'],
            ['id'],
            ondelete='SET NULL',
        )
    if not context.is_offline_mode():
        for column in ('channel_id', 'thread_key'):
            op.execute(
                f'UPDATE documents SET {column} = (SELECT sessions.{column} FROM sessions '
                'WHERE sessions.id = documents.session_id) '
                'WHERE session_id IS NOT NULL'
            )


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_documents_channel_id_channels'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_documents_channel_id'))
        batch_op.drop_column('thread_key')
        batch_op.drop_column('channel_id')
