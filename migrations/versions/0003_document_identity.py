"""Give documents an identity, so that a changed file replaces its older version in a namespace
(see core/ingestion/versions.py), and backfill it for the documents already stored.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:30:00
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_documents = sa.table(
    'documents',
    sa.column('id', sa.Uuid()),
    sa.column('title', sa.String()),
    sa.column('source_url', sa.Text()),
    sa.column('source_platform', sa.String()),
    sa.column('source_author', sa.String()),
    sa.column('identity_hash', sa.String()),
)


def upgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('identity_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_documents_namespace_identity', ['namespace_id', 'identity_hash'], unique=False)

    if not context.is_offline_mode():  # offline SQL can't hash: those rows are never replaced
        _backfill()


def _backfill() -> None:
    """The rule as of this revision, frozen here: `lorekeeper ingest` (platform console, author
    cli) is identified by its file: URL, everything else by its title (the filename)."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(
            _documents.c.id,
            _documents.c.title,
            _documents.c.source_url,
            _documents.c.source_platform,
            _documents.c.source_author,
        )
    ).all()
    values = []
    for doc_id, title, url, platform, author in rows:
        from_cli = platform == 'console' and author == 'cli' and (url or '').startswith('file:')
        identity = url if from_cli else title
        values.append({'doc_id': doc_id, 'hash': hashlib.sha256(identity.encode()).hexdigest()})
    if values:
        bind.execute(
            _documents.update()
            .where(_documents.c.id == sa.bindparam('doc_id'))
            .values(identity_hash=sa.bindparam('hash')),
            values,
        )


def downgrade() -> None:
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_index('ix_documents_namespace_identity')
        batch_op.drop_column('identity_hash')
