"""subscriber choices: maintenance events too, and resolved notices (issue 16)

Revision ID: c5a1f3e8d920
Revises: d9b3f6c2a847
Create Date: 2026-11-28 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c5a1f3e8d920'
down_revision = 'd9b3f6c2a847'
branch_labels = None
depends_on = None

# When SQLite's batch mode rebuilds the table, the copy keeps AUTOINCREMENT (ids never reused).
SQLITE_REBUILD = {"sqlite_autoincrement": True}


def upgrade():
    # Existing subscribers keep getting what they got: both default to true.
    with op.batch_alter_table('subscriptions', schema=None, table_kwargs=SQLITE_REBUILD) as batch_op:
        batch_op.add_column(sa.Column('notify_maintenance', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('notify_resolved', sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade():
    with op.batch_alter_table('subscriptions', schema=None, table_kwargs=SQLITE_REBUILD) as batch_op:
        batch_op.drop_column('notify_resolved')
        batch_op.drop_column('notify_maintenance')
