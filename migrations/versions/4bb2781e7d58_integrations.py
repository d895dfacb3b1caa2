"""integrations: monitoring sets component status (components.status_owner)

Revision ID: 4bb2781e7d58
Revises: ef1cdac6a71e
Create Date: 2026-11-28 06:44:08.244908

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '4bb2781e7d58'
down_revision = 'ef1cdac6a71e'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('components', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status_owner', sa.String(length=16), server_default='monitoring', nullable=False))


def downgrade():
    with op.batch_alter_table('components', schema=None) as batch_op:
        batch_op.drop_column('status_owner')
