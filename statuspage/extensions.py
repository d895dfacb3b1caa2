"""Flask extensions, created unbound here and bound in `create_app` via `init_app`."""
from __future__ import annotations

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, Table, event
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


@event.listens_for(Table, "after_parent_attach")
def _ids_are_never_reused(table: Table, parent: object) -> None:
    """Every table of the app gets SQLite's AUTOINCREMENT (models and plain `Table`s alike, today's
    and tomorrow's): without it SQLite hands the highest id out again once its row is deleted, so a
    deleted editor's token and session passed as the admin created next, and a deleted component's
    old incidents and subscriber filters pointed at a new one. (SQLite applies it only to a single
    INTEGER primary key; PostgreSQL's sequences never reuse ids anyway.)"""
    if parent is Base.metadata:
        table.dialect_kwargs["sqlite_autoincrement"] = True


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
