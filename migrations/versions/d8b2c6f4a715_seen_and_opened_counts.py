"""seen and opened counts: events.shown_count/opened_count, event_shown_latency (issue 16)

Revision ID: d8b2c6f4a715
Revises: c5a1f3e8d920
Create Date: 2026-11-28 10:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'd8b2c6f4a715'
down_revision = 'c5a1f3e8d920'
branch_labels = None
depends_on = None

# When SQLite's batch mode rebuilds the table, the copy keeps AUTOINCREMENT (ids never reused).
SQLITE_REBUILD = {"sqlite_autoincrement": True}


def upgrade():
    with op.batch_alter_table('events', schema=None, table_kwargs=SQLITE_REBUILD) as batch_op:
        batch_op.add_column(sa.Column('shown_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('opened_count', sa.Integer(), server_default='0', nullable=False))
    op.create_table('event_shown_latency',
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_event_shown_latency_event_id_events'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('event_id', 'bucket', name=op.f('pk_event_shown_latency')),
    )


def downgrade():
    op.drop_table('event_shown_latency')
    with op.batch_alter_table('events', schema=None, table_kwargs=SQLITE_REBUILD) as batch_op:
        batch_op.drop_column('opened_count')
        batch_op.drop_column('shown_count')
