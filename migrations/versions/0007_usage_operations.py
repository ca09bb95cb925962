"""Usage by operation: daily_usage rows are keyed by operation too and count calls beside
requests, and a request is an answered question (its query embedding), extractive or LLM.

Days whose raw token_usage rows are all still here are rolled up again by the next rollup;
older days keep their rows (operation '', requests as counted before: LLM answers).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KEY = ['day', 'workspace_id', 'user_id', 'channel_id', 'namespace_id', 'model']


def _old_key_name() -> str | None:
    if context.is_offline_mode():
        return op.f('uq_daily_usage_day_workspace_id_user_id_channel_id_namespace_id_model')
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints('daily_usage'):
        if list(constraint['column_names']) == _OLD_KEY:
            return constraint['name']
    return None


def upgrade() -> None:
    old = _old_key_name()
    with op.batch_alter_table('daily_usage', schema=None) as batch_op:
        if old is not None:
            batch_op.drop_constraint(old, type_='unique')
        batch_op.add_column(
            sa.Column('operation', sa.String(length=16), nullable=False, server_default='')
        )
        batch_op.add_column(sa.Column('calls', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_unique_constraint('uq_daily_usage_key', [*_OLD_KEY, 'operation'])
    if not context.is_offline_mode():
        # days after the first one that still has raw rows: every row of theirs is here
        if op.get_bind().dialect.name == 'postgresql':
            first = "(SELECT MIN(timezone('UTC', created_at))::date FROM token_usage)"
        else:
            first = '(SELECT date(MIN(created_at)) FROM token_usage)'
        op.execute(f'DELETE FROM daily_usage WHERE day > {first}')


def downgrade() -> None:
    if not context.is_offline_mode():
        op.execute("DELETE FROM daily_usage WHERE operation <> ''")
    with op.batch_alter_table('daily_usage', schema=None) as batch_op:
        batch_op.drop_constraint('uq_daily_usage_key', type_='unique')
        batch_op.drop_column('calls')
        batch_op.drop_column('operation')
        batch_op.create_unique_constraint(
            op.f('uq_daily_usage_day_workspace_id_user_id_channel_id_namespace_id_model'), _OLD_KEY
        )
