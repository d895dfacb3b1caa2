"""What the app needs from its database beyond the ORM, on SQLite and PostgreSQL alike:
foreign keys enforced on every SQLite connection, a row re-read under a write lock for status
transitions, and the dialect's INSERT (for ON CONFLICT)."""
from __future__ import annotations

import sqlite3
from typing import Any, TypeVar

from flask import Flask
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .extensions import db

M = TypeVar("M")
SQLITE_BUSY_TIMEOUT_MS = 15000


def init_app(app: Flask) -> None:
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite ignores FOREIGN KEY clauses unless asked, per connection: without this no ON DELETE
    # rule ever fired (a deleted user's tokens, a deleted component's links stayed behind).
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # A writer waits for the write lock up to this long (the driver's default is 5 s): status
        # transitions take it up front (`write_lock`), and several web workers and job workers
        # may queue for it at once; each holds it for milliseconds.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


def dialect() -> str:
    return db.session.get_bind().dialect.name


def insert(model: Any):
    """INSERT for the session's dialect, with `on_conflict_do_nothing/do_update`."""
    return pg_insert(model) if dialect() == "postgresql" else sqlite_insert(model)


def write_lock() -> None:
    """From here to the end of the transaction no other writer can commit in between: SQLite
    has no row locks, so take the database's write lock now (BEGIN IMMEDIATE; other writers wait
    up to the busy timeout) unless this transaction has already written, which means it holds it.
    On PostgreSQL a no-op: there the rows read next are locked with FOR UPDATE."""
    if dialect() == "sqlite":
        connection = db.session.connection()
        if not connection.connection.dbapi_connection.in_transaction:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def locked(model: type[M], ident: int) -> M | None:
    """Re-read one row under a write lock held until the transaction ends, so a status transition
    decided from it is decided once, whoever races it (two admins, the sweeper and a PATCH, two
    workers): SELECT ... FOR UPDATE on PostgreSQL (a second transaction waits, then reads the
    committed row), the database's write lock on SQLite (see `write_lock`). The row is refreshed
    from the database, not taken from the session's identity map."""
    write_lock()
    return db.session.get(model, ident, populate_existing=True, with_for_update=dialect() == "postgresql")
