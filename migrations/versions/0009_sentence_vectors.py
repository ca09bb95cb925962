"""Sentence vectors kept with each chunk: the answerer and the evidence gate weigh the query
against every sentence of the chunks they read. Embedding those sentences when a document is
indexed, instead of when a question first needs them, keeps a burst of questions on a new
corpus as fast as one on a warm one, in every replica and after every restart.

Existing chunks keep NULL: their sentences are embedded when a question needs them, as before,
until the document is indexed again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sentence_vectors', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('chunks', schema=None) as batch_op:
        batch_op.drop_column('sentence_vectors')
