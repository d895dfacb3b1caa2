"""published snapshot: publish_requests (outbox) and publish_status

Revision ID: b7d4e2a9c310
Revises: ef1cdac6a71e
Create Date: 2026-11-26 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'b7d4e2a9c310'
down_revision = '129950ba4e71'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('publish_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('not_before', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publish_requests')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('publish_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_publish_requests_created_at'), ['created_at'], unique=False)

    op.create_table('publish_status',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('last_published_at', sa.DateTime(), nullable=True),
    sa.Column('last_duration_ms', sa.Integer(), nullable=False),
    sa.Column('last_files', sa.Integer(), nullable=False),
    sa.Column('rounds', sa.Integer(), nullable=False),
    sa.Column('files_written', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(), nullable=True),
    sa.Column('failing_since', sa.DateTime(), nullable=True),
    sa.Column('build_id', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_publish_status')),
    sqlite_autoincrement=True,
    )


def downgrade():
    op.drop_table('publish_status')
    with op.batch_alter_table('publish_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_publish_requests_created_at'))
    op.drop_table('publish_requests')
