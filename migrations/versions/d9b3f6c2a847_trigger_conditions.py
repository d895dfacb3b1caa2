"""trigger conditions: triggers.min_impact, triggers.component_ids

Revision ID: d9b3f6c2a847
Revises: c4e8a1f0d215
Create Date: 2026-11-28 10:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'd9b3f6c2a847'
down_revision = 'c4e8a1f0d215'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('triggers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_impact', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('component_ids', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('triggers', schema=None) as batch_op:
        batch_op.drop_column('component_ids')
        batch_op.drop_column('min_impact')
