"""incident updates: edited_at (an update's text edited after posting)

Revision ID: c3a8e51f92d4
Revises: d8b2c6f4a715
Create Date: 2026-11-28 10:05:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c3a8e51f92d4'
down_revision = 'd8b2c6f4a715'
branch_labels = None
depends_on = None

# SQLite rebuilds the table for batch operations: keep its AUTOINCREMENT (ids never reused).
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade():
    with op.batch_alter_table('incident_updates', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('edited_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('incident_updates', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('edited_at')
