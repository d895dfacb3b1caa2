"""push: payload_format in push settings, last_seen_at on subscriptions

Revision ID: c5a8e1f04d27
Revises: b7d4e2a9c310
Create Date: 2026-11-28 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c5a8e1f04d27'
down_revision = 'b7d4e2a9c310'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('push_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload_format', sa.String(length=16), nullable=False,
                                      server_default='auto'))
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_seen_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('last_seen_at')
    with op.batch_alter_table('push_settings', schema=None) as batch_op:
        batch_op.drop_column('payload_format')
