"""maintenance reminders: maintenance_reminders, push_settings.maintenance_reminder_minutes

Revision ID: c4e8a1f0d215
Revises: c5a8e1f04d27
Create Date: 2026-11-28 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


revision = 'c4e8a1f0d215'
down_revision = 'c5a8e1f04d27'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('maintenance_reminders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(), nullable=False),
    sa.Column('lead_minutes', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_maintenance_reminders_event_id_events'),
                            ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'],
                            name=op.f('fk_maintenance_reminders_incident_id_incidents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_reminders')),
    sa.UniqueConstraint('incident_id', 'scheduled_for', 'lead_minutes',
                        name='uq_maintenance_reminders_schedule_lead'),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('push_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('maintenance_reminder_minutes', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('push_settings', schema=None) as batch_op:
        batch_op.drop_column('maintenance_reminder_minutes')
    op.drop_table('maintenance_reminders')
