"""The admin log: every change to who may sign in or call the API, with who did it."""
from __future__ import annotations

import enum
import getpass
from typing import TYPE_CHECKING

from sqlalchemy import select

from .extensions import db
from .models import AdminLog
from .timeutil import utcnow

if TYPE_CHECKING:
    from .models import User


class AuditAction(enum.StrEnum):
    USER_CREATED = "user.created"
    USER_DELETED = "user.deleted"
    USER_DISABLED = "user.disabled"
    USER_ENABLED = "user.enabled"
    ROLE_CHANGED = "user.role_changed"
    PASSWORD_CHANGED = "user.password_changed"
    SIGNED_IN = "session.signed_in"
    SIGNED_OUT = "session.signed_out"
    SESSIONS_REVOKED = "session.revoked"
    TOKEN_CREATED = "token.created"
    TOKEN_REVOKED = "token.revoked"
    VAPID_GENERATED = "vapid.generated"
    VAPID_ROTATED = "vapid.rotated"


class Actor:
    """Who made a change: a signed-in user (the admin UI) or the server's command line."""

    def __init__(self, label: str, user: User | None = None):
        self.label = label[:254]
        self.user = user

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.email, user)

    @classmethod
    def command_line(cls) -> Actor:
        try:
            who = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers)
            who = "unknown"
        return cls(f"command line ({who})")


def record(action: AuditAction, actor: Actor, *, target: User | None = None, detail: str | None = None) -> None:
    """Add an entry to the session; it commits with the change it describes."""
    db.session.add(AdminLog(
        created_at=utcnow(), action=action.value, actor=actor.label,
        actor_user_id=actor.user.id if actor.user is not None else None,
        target=target.email if target is not None else None,
        target_user_id=target.id if target is not None else None,
        detail=detail[:300] if detail else None,
    ))


def recent_entries(limit: int = 200, offset: int = 0) -> list[AdminLog]:
    return list(db.session.execute(
        select(AdminLog).order_by(AdminLog.id.desc()).limit(limit).offset(offset)
    ).scalars())
