"""`flask db upgrade` creates every table on SQLite and on PostgreSQL, matching the models."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect

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
