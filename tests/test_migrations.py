"""`flask db upgrade` creates every table on SQLite and on PostgreSQL, matching the models."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Integer, create_engine, inspect, text

from statuspage import create_app
from statuspage.extensions import db
from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parent.parent


def _flask(args: list[str], database_url: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": database_url, "FLASK_DEBUG": "1", "INSTANCE_PATH": str(tmp_path),
           "REDIS_URL": ""}
    return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _assert_schema_matches_models(url: str) -> None:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names())
        assert set(db.metadata.tables) <= tables
        for name, table in db.metadata.tables.items():
            columns = {c["name"] for c in inspector.get_columns(name)}
            assert {c.name for c in table.columns} == columns, name
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_db_upgrade_creates_every_table_and_matches_models(backend, tmp_path):
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'mig.db'}"
        name = None
    else:
        name = f"statuspage_mig_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = "postgresql+psycopg://" + PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
    try:
        result = _flask(["db", "upgrade"], url, tmp_path)
        assert result.returncode == 0, result.stderr
        _assert_schema_matches_models(url)
        # Models and migrations agree: autogenerate finds nothing new to migrate.
        check = _flask(["db", "check"], url, tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
        # Downgrade to nothing and up again works (migrations are reversible).
        assert _flask(["db", "downgrade", "base"], url, tmp_path).returncode == 0
        assert _flask(["db", "upgrade"], url, tmp_path).returncode == 0
        boot = _flask(["bootstrap"], url, tmp_path)
        assert boot.returncode == 0 and "admin@example.com" in boot.stdout, boot.stderr
    finally:
        if name:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _new_database(backend: str, tmp_path) -> tuple[str, str | None]:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'mig.db'}", None
    name = f"statuspage_mig_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return "postgresql+psycopg://" + PG_ADMIN_URL.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}", name


def _drop_database(name: str | None) -> None:
    if name:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_sqlite_table_gets_autoincrement_from_the_models_and_the_migrations(tmp_path):
    """Every table in the metadata -- including ones added after this test was written -- with an
    INTEGER id never hands a deleted row's id out again (SQLite's AUTOINCREMENT)."""
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateTable

    def integer_id(table) -> bool:
        # A surrogate id; a primary key that is another row's id (a foreign key) is never handed out.
        pk = list(table.primary_key.columns)
        return len(pk) == 1 and isinstance(pk[0].type, Integer) and not pk[0].foreign_keys

    create_app({"TESTING": True, "SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})  # imports every model
    tables = db.metadata.sorted_tables
    assert len(tables) >= 17
    for table in tables:
        ddl = str(CreateTable(table).compile(dialect=sqlite.dialect()))
        assert ("AUTOINCREMENT" in ddl) == integer_id(table), table.name

    url, _ = _new_database("sqlite", tmp_path)
    assert _flask(["db", "upgrade"], url, tmp_path).returncode == 0
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            for table in tables:
                sql = conn.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type='table' AND name=?",
                                           (table.name,)).scalar()
                assert ("AUTOINCREMENT" in sql) == integer_id(table), (table.name, sql)
    finally:
        engine.dispose()


def _foreign_keys(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(url)
    try:
        inspector = inspect(engine)
        return {name: sorted((tuple(fk["constrained_columns"]), fk["referred_table"], tuple(fk["referred_columns"]),
                              (fk.get("options") or {}).get("ondelete"))
                             for fk in inspector.get_foreign_keys(name))
                for name in db.metadata.tables}
    finally:
        engine.dispose()


def test_migrated_sqlite_schema_keeps_every_foreign_key_and_on_delete_rule(tmp_path):
    url, _ = _new_database("sqlite", tmp_path)
    assert _flask(["db", "upgrade"], url, tmp_path).returncode == 0
    reference = f"sqlite:///{tmp_path / 'models.db'}"
    engine = create_engine(reference)
    db.metadata.create_all(engine)
    engine.dispose()
    migrated, modelled = _foreign_keys(url), _foreign_keys(reference)
    assert migrated == modelled
    assert sum(len(fks) for fks in migrated.values()) >= 12


PREVIOUS_HEAD = "ef1cdac6a71e"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_keeps_rows_and_ids_and_merges_endpoint_spellings(backend, tmp_path):
    url, name = _new_database(backend, tmp_path)
    try:
        assert _flask(["db", "upgrade", PREVIOUS_HEAD], url, tmp_path).returncode == 0
        engine = create_engine(url)
        old, new = "2026-01-01 00:00:00", "2026-06-01 00:00:00"
        fcm = "https://fcm.googleapis.com/fcm/send/device-1"
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, email, password_hash, role, created_at) VALUES "
                              "(1, 'a@example.com', 'x', 'admin', :t), (3, 'e@example.com', 'x', 'editor', :t)"),
                         {"t": old})
            conn.execute(text("INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at) VALUES "
                              "(5, 3, 'bot', 'h5', 'sp_5', :t)"), {"t": old})
            conn.execute(text("INSERT INTO components (id, name, position, status, showcase, created_at, updated_at) "
                              "VALUES (1, 'API', 1, 'operational', true, :t, :t)"), {"t": old})
            conn.execute(text("INSERT INTO incidents (id, kind, name, status, impact, created_at, updated_at, "
                              "auto_transition) VALUES (1, 'incident', 'Down', 'resolved', 'major', :t, :t, true)"),
                         {"t": old})
            for eid in (1, 2):
                conn.execute(text("INSERT INTO events (id, type, incident_id, context, notify, created_at, "
                                  "deliver_after, state, queued_count, sent_count, expired_count, failed_count) "
                                  "VALUES (:id, 'incident.created', 1, '{}', true, :t, :t, 'done', 0, 0, 0, 0)"),
                             {"id": eid, "t": old})
            # One device, three spellings (and an unrelated subscription that is already canonical).
            rows = [(10, fcm, old, old), (11, "HTTPS://FCM.GoogleAPIs.com:443/fcm/send/device-1", new, old),
                    (12, "https://fcm.googleapis.com:0443/fcm/send/device-1", old, old),
                    (13, "https://fcm.googleapis.com/fcm/send/other", old, old)]
            for sid, endpoint, active, updated in rows:
                conn.execute(text("INSERT INTO subscriptions (id, endpoint, p256dh, auth, all_components, browser, "
                                  "status, created_at, updated_at, last_active_at) VALUES "
                                  "(:id, :e, 'k', 'a', false, 'Chrome', 'active', :u, :u, :a)"),
                             {"id": sid, "e": endpoint, "u": updated, "a": active})
                conn.execute(text("INSERT INTO subscription_components (subscription_id, component_id) "
                                  "VALUES (:id, 1)"), {"id": sid})
            if backend == "sqlite":
                # Before this revision SQLite never enforced foreign keys: a deleted component left
                # its links and events behind. The upgrade applies the ON DELETE rules to them.
                conn.execute(text("INSERT INTO incident_components (incident_id, component_id) VALUES (1, 1), (1, 9)"))
                conn.execute(text("UPDATE events SET component_id = 9 WHERE id = 2"))
            # Event 1 reached spellings 10 and 12 (the device got it twice); event 2 reached 12 only.
            for did, eid, sid in ((1, 1, 10), (2, 1, 12), (3, 2, 12), (4, 1, 13)):
                conn.execute(text("INSERT INTO deliveries (id, event_id, subscription_id, outcome, attempts, "
                                  "created_at, updated_at) VALUES (:d, :e, :s, 'sent', 1, :t, :t)"),
                             {"d": did, "e": eid, "s": sid, "t": old})
            if backend == "postgresql":  # rows written with explicit ids: the sequence catches up
                conn.execute(text("SELECT setval(pg_get_serial_sequence('users', 'id'), 3)"))
        engine.dispose()

        result = _flask(["db", "upgrade"], url, tmp_path)
        assert result.returncode == 0, result.stderr

        engine = create_engine(url)
        with engine.begin() as conn:
            subs = conn.execute(text("SELECT id, endpoint FROM subscriptions ORDER BY id")).all()
            # The most recently active spelling (11) is kept, under the canonical spelling.
            assert [tuple(r) for r in subs] == [(11, fcm), (13, "https://fcm.googleapis.com/fcm/send/other")]
            deliveries = conn.execute(text("SELECT event_id, subscription_id FROM deliveries "
                                           "ORDER BY event_id, subscription_id")).all()
            assert [tuple(r) for r in deliveries] == [(1, 11), (1, 13), (2, 11)]
            links = conn.execute(text("SELECT subscription_id FROM subscription_components ORDER BY 1")).scalars()
            assert list(links) == [11, 13]
            assert conn.execute(text("SELECT id, email FROM users ORDER BY id")).all() == [
                (1, "a@example.com"), (3, "e@example.com")]
            if backend == "sqlite":
                assert conn.execute(text("SELECT component_id FROM incident_components")).scalars().all() == [1]
                assert conn.execute(text("SELECT component_id FROM events WHERE id = 2")).scalar() is None
                assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 2
            # ids are never reused: delete the highest, insert, and it gets a new one
            conn.execute(text("DELETE FROM api_tokens WHERE user_id = 3"))
            conn.execute(text("DELETE FROM users WHERE id = 3"))
            conn.execute(text("INSERT INTO users (email, password_hash, role, created_at) "
                              "VALUES ('n@example.com', 'x', 'admin', :t)"), {"t": new})
            assert conn.execute(text("SELECT id FROM users WHERE email = 'n@example.com'")).scalar() > 3
        engine.dispose()
        check = _flask(["db", "check"], url, tmp_path)
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        _drop_database(name)
