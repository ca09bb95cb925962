"""Knowledge with a visibility and an owner: channels remember whether the platform says they
are private; a namespace can belong to one conversation (the files dropped there); documents
keep their uploader and the platform ids of their file and message; uploads have their own
daily allowance and token_usage operation; questions are counted per user for a rate limit.

Existing documents take their uploader and platform file id from their upload row, when it
is still there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

import core.db.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPERATIONS_BEFORE = "operation IN ('chat', 'condense', 'embedding')"
_OPERATIONS = "operation IN ('chat', 'condense', 'embedding', 'ingest')"
DEFAULT_PLAN = '00000000-0000-7000-8000-000000000001'
DEFAULT_USER_UPLOAD_TOKENS = 2_000_000
DEFAULT_WORKSPACE_UPLOAD_TOKENS = 20_000_000


def upgrade() -> None:
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_private', sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column('privacy_checked_at', core.db.types.UTCDateTime(), nullable=True)
        )

    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_id', sa.Uuid(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_namespaces_channel_id'), ['channel_id'])
        batch_op.create_foreign_key(
            batch_op.f('fk_namespaces_channel_id_channels'),
            'channels',
            ['channel_id'],
            ['id'],
            ondelete='CASCADE',
        )

    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uploaded_by', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('platform_file_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('platform_message_id', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_documents_uploaded_by'), ['uploaded_by'], unique=False)
        batch_op.create_index(
            batch_op.f('ix_documents_platform_file_id'), ['platform_file_id'], unique=False
        )
        batch_op.create_index(
            batch_op.f('ix_documents_platform_message_id'), ['platform_message_id'], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f('fk_documents_uploaded_by_users'),
            'users',
            ['uploaded_by'],
            ['id'],
            ondelete='SET NULL',
        )

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_daily_upload_tokens', sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column('workspace_daily_upload_tokens', sa.BigInteger(), nullable=True)
        )

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_user_created', ['user_id', 'created_at'], unique=False)

    with op.batch_alter_table('token_usage', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_token_usage_operation'), type_='check')
        batch_op.create_check_constraint('operation', _OPERATIONS)

    if not context.is_offline_mode():
        _backfill()


def _backfill() -> None:
    bind = op.get_bind()
    bind.execute(
        sa.text(
            'UPDATE plans SET user_daily_upload_tokens = :user, '
            'workspace_daily_upload_tokens = :workspace WHERE is_default'
        ),
        {'user': DEFAULT_USER_UPLOAD_TOKENS, 'workspace': DEFAULT_WORKSPACE_UPLOAD_TOKENS},
    )
    for column, source in (('uploaded_by', 'user_id'), ('platform_file_id', 'platform_file_id')):
        bind.execute(
            sa.text(
                f'UPDATE documents SET {column} = (SELECT uploads.{source} FROM uploads '
                'WHERE uploads.document_id = documents.id '
                f'AND uploads.{source} IS NOT NULL ORDER BY uploads.created_at LIMIT 1) '
                f'WHERE {column} IS NULL'
            )
        )


def downgrade() -> None:
    with op.batch_alter_table('token_usage', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_token_usage_operation'), type_='check')
    op.execute("UPDATE token_usage SET operation = 'embedding' WHERE operation = 'ingest'")
    with op.batch_alter_table('token_usage', schema=None) as batch_op:
        batch_op.create_check_constraint('operation', _OPERATIONS_BEFORE)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_user_created')

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('workspace_daily_upload_tokens')
        batch_op.drop_column('user_daily_upload_tokens')

    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_documents_uploaded_by_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_documents_platform_message_id'))
        batch_op.drop_index(batch_op.f('ix_documents_platform_file_id'))
        batch_op.drop_index(batch_op.f('ix_documents_uploaded_by'))
        batch_op.drop_column('platform_message_id')
        batch_op.drop_column('platform_file_id')
        batch_op.drop_column('uploaded_by')

    with op.batch_alter_table('namespaces', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_namespaces_channel_id_channels'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_namespaces_channel_id'), type_='unique')
        batch_op.drop_column('channel_id')

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_column('privacy_checked_at')
        batch_op.drop_column('is_private')
