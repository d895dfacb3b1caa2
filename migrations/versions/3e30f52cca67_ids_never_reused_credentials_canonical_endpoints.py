"""ids never reused, credentials that die with their user, canonical endpoints (issue 11)

- SQLite: every table with an INTEGER id is rebuilt with AUTOINCREMENT (ids are never handed out
  again after a delete); PostgreSQL's sequences never reuse ids, so nothing to do there.
- users.disabled_at / password_changed_at; user_sessions (one row per sign-in, so a session or
  remember-me cookie can be revoked); admin_log (who did what to which credential).
- incidents.notify: the "notify subscribers" choice made at creation, which the automatic
  transitions it implies (a maintenance starting and completing on time) follow.
- subscriptions: endpoints rewritten to their canonical spelling (lower-case scheme and host, no
  default port); rows that were the same device spelled differently are merged into the most
  recently active one, their delivery history moved onto it.

Revision ID: 3e30f52cca67
Revises: ef1cdac6a71e
Create Date: 2026-12-01 10:00:00
"""
from datetime import datetime
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = '3e30f52cca67'
down_revision = 'ef1cdac6a71e'
branch_labels = None
depends_on = None

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _sqlite_tables_without_autoincrement(bind):
    """Every table (whichever migration created it) whose single INTEGER primary key lacks
    AUTOINCREMENT, from SQLite's own schema."""
    inspector = sa.inspect(bind)
    names = []
    for name in inspector.get_table_names():
        if name == "alembic_version" or name.startswith("sqlite_"):
            continue
        pk = inspector.get_pk_constraint(name)["constrained_columns"]
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        if len(pk) != 1 or not isinstance(columns[pk[0]]["type"], sa.Integer):
            continue
        sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (name,)).scalar()
        if "AUTOINCREMENT" not in sql.upper():
            names.append(name)
    return names


def _apply_on_delete_rules_that_never_fired(bind):
    """SQLite never enforced the foreign keys before this revision, so a deleted component left
    its incident and subscriber links behind, a deleted user their tokens. Apply each key's own
    ON DELETE rule to those rows now (CASCADE: delete, SET NULL: clear), until none is left."""
    for _ in range(10):
        problems = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if not problems:
            return
        for table, rowid, _parent, fkid in problems:
            keys = bind.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').fetchall()
            # columns: id, seq, table, from, to, on_update, on_delete, match
            columns = [k[3] for k in keys if k[0] == fkid]
            rule = next(k[6] for k in keys if k[0] == fkid).upper()
            if rule == "SET NULL":
                assignments = ", ".join(f'"{c}" = NULL' for c in columns)
                bind.exec_driver_sql(f'UPDATE "{table}" SET {assignments} WHERE rowid = ?', (rowid,))
            else:
                bind.exec_driver_sql(f'DELETE FROM "{table}" WHERE rowid = ?', (rowid,))
    raise RuntimeError("rows with missing parents are left after applying the ON DELETE rules")


def _rebuild_with_autoincrement(bind):
    for name in _sqlite_tables_without_autoincrement(bind):
        # Batch mode: create the new table, copy every row (ids kept), drop, rename. The ids
        # already handed out seed sqlite_sequence, so the next one is above all of them.
        with op.batch_alter_table(name, recreate="always", naming_convention=NAMING_CONVENTION,
                                  table_kwargs={"sqlite_autoincrement": True}):
            pass


# --- canonical endpoints (a copy of push.subscriptions.canonical_endpoint as it was written here:
# a migration must not change when the app's code does) -----------------------------------------

def _canonical(url):
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return url
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased by urlsplit
    if ":" in host:
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    netloc = host if port in (None, default) else f"{host}:{port}"
    canonical = f"{scheme}://{netloc}{parts.path}"
    if parts.query:
        canonical += f"?{parts.query}"
    return canonical


def _recency(row):
    """The most recently active spelling wins: the latest of its last push and its last change
    (a subscribe, unsubscribe or expiry is the device's latest word), then the newest row."""
    moments = [m for m in (row.last_active_at, row.updated_at) if m is not None]
    return (max(moments) if moments else datetime.min, row.id)


def _merge_endpoint_spellings(bind):
    subs = sa.table("subscriptions", sa.column("id"), sa.column("endpoint"), sa.column("updated_at"),
                    sa.column("last_active_at"))
    deliveries = sa.table("deliveries", sa.column("id"), sa.column("event_id"), sa.column("subscription_id"))
    links = sa.table("subscription_components", sa.column("subscription_id"))
    # Only rows whose spelling is not canonical need work; stream the table, keep just those.
    renames = {}
    result = bind.execute(sa.select(subs.c.id, subs.c.endpoint).order_by(subs.c.id)
                          .execution_options(stream_results=True, yield_per=5000))
    for sid, endpoint in result:
        canonical = _canonical(endpoint)
        if canonical != endpoint:
            renames.setdefault(canonical, []).append(sid)
    for canonical, ids in renames.items():
        holder = bind.execute(sa.select(subs.c.id).where(subs.c.endpoint == canonical)).scalar()
        group = ids + ([holder] if holder is not None else [])
        rows = bind.execute(sa.select(subs.c.id, subs.c.updated_at, subs.c.last_active_at)
                            .where(subs.c.id.in_(group))).all()

        keep = max(rows, key=_recency)
        others = [row.id for row in rows if row.id != keep.id]
        for other in others:
            # The kept row takes over each merged row's delivery history where it has none for
            # that event (one device, one delivery row per event); one merged row at a time, so
            # two of them with the same event never both move. What is left goes with them.
            taken = sa.select(deliveries.c.event_id).where(deliveries.c.subscription_id == keep.id)
            bind.execute(sa.update(deliveries).where(deliveries.c.subscription_id == other,
                                                     deliveries.c.event_id.not_in(taken))
                         .values(subscription_id=keep.id))
        if others:
            bind.execute(sa.delete(deliveries).where(deliveries.c.subscription_id.in_(others)))
            bind.execute(sa.delete(links).where(links.c.subscription_id.in_(others)))
            bind.execute(sa.delete(subs).where(subs.c.id.in_(others)))
        bind.execute(sa.update(subs).where(subs.c.id == keep.id).values(endpoint=canonical))


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _apply_on_delete_rules_that_never_fired(bind)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('disabled_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(), nullable=True))

    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify', sa.Boolean(), nullable=False, server_default=sa.true()))

    op.create_table('user_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('remember', sa.Boolean(), nullable=False),
    sa.Column('browser', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('admin_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('actor', sa.String(length=254), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.String(length=254), nullable=True),
    sa.Column('target_user_id', sa.Integer(), nullable=True),
    sa.Column('detail', sa.String(length=300), nullable=True),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_admin_log_actor_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['target_user_id'], ['users.id'], name=op.f('fk_admin_log_target_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_log')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('admin_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_log_created_at'), ['created_at'], unique=False)

    _merge_endpoint_spellings(bind)
    if bind.dialect.name == "sqlite":
        # Last: a batch operation above may have rebuilt a table from its reflection, which
        # does not carry AUTOINCREMENT over.
        _rebuild_with_autoincrement(bind)


def downgrade():
    with op.batch_alter_table('admin_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_log_created_at'))
    op.drop_table('admin_log')
    with op.batch_alter_table('user_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_sessions_user_id'))
    op.drop_table('user_sessions')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('notify')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('disabled_at')
    # AUTOINCREMENT and canonical endpoints stay: both are correct under the older code too.
