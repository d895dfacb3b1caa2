"""component status history (uptime), maintenance -> under_maintenance switch, postmortems,
deliver_notifications on updates

Revision ID: 129950ba4e71
Revises: ef1cdac6a71e
Create Date: 2026-11-28 06:37:40.801158

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '129950ba4e71'
down_revision = '4bb2781e7d58'
branch_labels = None
depends_on = None


# SQLite rebuilds a table to change it: keep the ids-never-reused rule (issue 11) on the copy.
KEEP_AUTOINCREMENT = {"sqlite_autoincrement": True}


def upgrade():
    op.create_table('component_status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('component_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('changed_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['component_id'], ['components.id'], name=op.f('fk_component_status_changes_component_id_components'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_component_status_changes')),
    sqlite_autoincrement=True,
    )
    with op.batch_alter_table('component_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_component_status_changes_changed_at'), ['changed_at'], unique=False)
        batch_op.create_index('ix_component_status_changes_component_changed', ['component_id', 'changed_at'], unique=False)

    # The history starts with what is known: each existing component's current status since its
    # last update (updated_at also moves on renames, so this may start late, never early: the
    # uptime bars show "no data" rather than invent a past).
    op.execute(
        "INSERT INTO component_status_changes (component_id, status, changed_at) "
        "SELECT id, status, COALESCE(updated_at, created_at) FROM components"
    )

    with op.batch_alter_table('incident_updates', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('deliver_notifications', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))

    with op.batch_alter_table('incidents', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.add_column(sa.Column('auto_transition_to_maintenance_state', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('postmortem_body', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('postmortem_published_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('incidents', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('postmortem_published_at')
        batch_op.drop_column('postmortem_body')
        batch_op.drop_column('auto_transition_to_maintenance_state')

    with op.batch_alter_table('incident_updates', schema=None, table_kwargs=KEEP_AUTOINCREMENT) as batch_op:
        batch_op.drop_column('deliver_notifications')

    with op.batch_alter_table('component_status_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_component_status_changes_component_changed')
        batch_op.drop_index(batch_op.f('ix_component_status_changes_changed_at'))

    op.drop_table('component_status_changes')
