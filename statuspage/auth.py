"""Users, their sign-ins and API tokens: the functions the CLI, admin UI and API authentication
share. Every credential change is written to the admin log (audit.py) in the same transaction.

A sign-in is a row in `user_sessions`; the session cookie and the remember-me cookie carry its
random key (Flask-Login's "alternative token"), never the bare user id. So signing out ends that
sign-in (a copied cookie stops working at once), and a password change, disabling, deleting the
user or `users sign-out-all` end them all. Tokens die with their user (ON DELETE CASCADE) and are
refused while the user is disabled.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask import current_app, g
from flask_login import login_user, logout_user
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import contains_eager

from .audit import Actor, AuditAction, record
from .database import dialect, write_lock
from .errors import ConflictError, NotFoundError, ValidationError
from .extensions import db, login_manager
from .models import ROLES, ApiToken, User, UserSession
from .timeutil import utcnow

TOKEN_PREFIX = "sp_"
SESSION_KEY_PREFIX = "s."
MIN_PASSWORD = 8
# How often a sign-in's or token's "last seen" time is written (reads must not write every time).
TOUCH_SECONDS = 60


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- sign-ins -------------------------------------------------------------------------------

@login_manager.user_loader
def load_user(session_key: str) -> User | None:
    """Flask-Login calls this with the key from the session or remember-me cookie, on every
    request that looks at `current_user`: the sign-in must still exist, be unexpired, and its
    user enabled."""
    if not session_key.startswith(SESSION_KEY_PREFIX) or len(session_key) > 100:
        return None  # e.g. a cookie from before sign-ins were revocable: sign in again
    now = utcnow()
    row = db.session.execute(
        select(UserSession).join(UserSession.user).options(contains_eager(UserSession.user))
        .where(UserSession.token_hash == hash_token(session_key), UserSession.expires_at > now,
               User.disabled_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        return None
    if (now - row.last_seen_at).total_seconds() > TOUCH_SECONDS:
        row.last_seen_at = now
        db.session.commit()
    user = row.user
    user.session_key = session_key
    g.user_session_id = row.id
    return user


def sign_in(user: User, *, remember: bool, user_agent: str | None = None) -> None:
    """Start a sign-in for a user `authenticate` returned, and log the browser in with it."""
    from .push.subscriptions import browser_family

    key = SESSION_KEY_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    config = current_app.config
    lifetime = config.get("REMEMBER_COOKIE_DURATION", timedelta(days=365)) if remember \
        else config["PERMANENT_SESSION_LIFETIME"]
    if not isinstance(lifetime, timedelta):
        lifetime = timedelta(seconds=lifetime)
    db.session.execute(delete(UserSession).where(UserSession.expires_at <= now))  # housekeeping
    row = UserSession(user_id=user.id, token_hash=hash_token(key), remember=remember,
                      browser=browser_family(user_agent), created_at=now, last_seen_at=now,
                      expires_at=now + lifetime)
    db.session.add(row)
    record(AuditAction.SIGNED_IN, Actor.of(user), target=user,
           detail=f"{row.browser}{', remember me' if remember else ''}")
    db.session.commit()
    user.session_key = key
    g.user_session_id = row.id
    login_user(user, remember=remember, duration=lifetime if remember else None)


def sign_out(user: User) -> None:
    """End the current sign-in (its row and both cookies)."""
    session_id = g.get("user_session_id")
    if session_id is not None:
        db.session.execute(delete(UserSession).where(UserSession.id == session_id))
    record(AuditAction.SIGNED_OUT, Actor.of(user), target=user)
    db.session.commit()
    logout_user()


def revoke_sessions(user: User | None = None, *, keep_current: bool = False) -> int:
    """Delete the sign-ins of one user (or of everyone); returns how many ended."""
    query = delete(UserSession)
    if user is not None:
        query = query.where(UserSession.user_id == user.id)
    if keep_current and g.get("user_session_id") is not None:
        query = query.where(UserSession.id != g.user_session_id)
    return db.session.execute(query).rowcount


def list_sessions(user: User) -> list[UserSession]:
    return list(db.session.execute(
        select(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at > utcnow())
        .order_by(UserSession.last_seen_at.desc())
    ).scalars())


# --- users ----------------------------------------------------------------------------------

def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@") or "\x00" in email:
        raise ValidationError("a valid email address is required", field="email")
    return email


def _check_password(password: str, field: str = "password") -> None:
    if len(password or "") < MIN_PASSWORD:
        raise ValidationError(f"password must be at least {MIN_PASSWORD} characters", field=field)
    if "\x00" in password:
        raise ValidationError("password must not contain NUL characters", field=field)


def create_user(email: str, password: str, role: str = "admin", *, actor: Actor | None = None) -> User:
    email = normalize_email(email)
    if role not in ROLES:
        raise ValidationError(f"role must be one of: {', '.join(ROLES)}", field="role")
    _check_password(password)
    if find_user(email) is not None:
        raise ConflictError(f"a user with email {email} already exists", field="email")
    user = User(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record(AuditAction.USER_CREATED, actor or Actor.command_line(), target=user, detail=f"role {role}")
    return user


def find_user(email: str) -> User | None:
    return db.session.execute(select(User).where(User.email == email.strip().lower())).scalar_one_or_none()


def get_user(email: str) -> User:
    user = find_user(email) if email and "\x00" not in email else None
    if user is None:
        raise NotFoundError(f"no user with email {email}")
    return user


def list_users() -> list[tuple[User, int]]:
    """Every user with the number of sign-ins still open."""
    open_sessions = (select(UserSession.user_id, func.count().label("n"))
                     .where(UserSession.expires_at > utcnow()).group_by(UserSession.user_id).subquery())
    rows = db.session.execute(
        select(User, func.coalesce(open_sessions.c.n, 0))
        .outerjoin(open_sessions, open_sessions.c.user_id == User.id).order_by(User.id)
    ).all()
    return [(user, count) for user, count in rows]


def authenticate(email: str, password: str) -> User | None:
    # NUL can't be in a stored email (and PostgreSQL refuses it in a query): treat as unknown.
    user = find_user(email) if email and "\x00" not in email else None
    if user is None or not user.is_active:
        # Spend the same time hashing so response time does not reveal which emails exist (or
        # which are disabled).
        User(password_hash="").set_password(password or "x")
        return None
    return user if user.check_password(password or "") else None


def _lock_user(email: str) -> User:
    """The user re-read under a write lock, so the last-admin rule holds whoever races it. On
    PostgreSQL the active admins are locked first, always in id order (two admins removing each
    other at once then wait for each other instead of deadlocking, and the second sees the first's
    change); SQLite's write lock serialises the whole change."""
    write_lock()
    postgresql = dialect() == "postgresql"
    if postgresql:
        db.session.execute(select(User.id).where(User.role == "admin", User.disabled_at.is_(None))
                           .order_by(User.id).with_for_update())
    query = select(User).where(User.email == normalize_email(email)).execution_options(populate_existing=True)
    user = db.session.execute(query.with_for_update() if postgresql else query).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no user with email {email}")
    return user


def _keep_an_admin(user: User, what: str) -> None:
    """Refuse to remove, disable or demote the last active admin: nobody could manage the page.
    (Called after `_lock_user`, so the count cannot change before the commit.)"""
    if user.role != "admin" or user.disabled_at is not None:
        return
    others = db.session.execute(
        select(User.id).where(User.role == "admin", User.disabled_at.is_(None), User.id != user.id).limit(1)
    ).first()
    if others is None:
        raise ConflictError(f"{user.email} is the last active admin and cannot be {what}; "
                            "make another user an admin first", field="email")


def delete_user(email: str, *, actor: Actor) -> None:
    user = _lock_user(email)
    _keep_an_admin(user, "deleted")
    record(AuditAction.USER_DELETED, actor, target=user, detail=f"role {user.role}")
    db.session.flush()  # the entry first: its link to the user is cleared (ON DELETE SET NULL)
    # Sign-ins and tokens go with the row (ON DELETE CASCADE).
    db.session.delete(user)
    db.session.flush()


def set_disabled(email: str, disabled: bool, *, actor: Actor) -> User:
    user = _lock_user(email)
    if disabled:
        _keep_an_admin(user, "disabled")
        if user.disabled_at is None:
            user.disabled_at = utcnow()
        revoke_sessions(user)
        record(AuditAction.USER_DISABLED, actor, target=user)
    else:
        user.disabled_at = None
        record(AuditAction.USER_ENABLED, actor, target=user)
    db.session.flush()
    return user


def set_role(email: str, role: str, *, actor: Actor) -> User:
    if role not in ROLES:
        raise ValidationError(f"role must be one of: {', '.join(ROLES)}", field="role")
    user = _lock_user(email)
    if role != "admin":
        _keep_an_admin(user, "demoted")
    old, user.role = user.role, role
    record(AuditAction.ROLE_CHANGED, actor, target=user, detail=f"{old} -> {role}")
    db.session.flush()
    return user


def set_password(user: User, password: str, *, actor: Actor, keep_current_session: bool = False) -> int:
    """New password; every sign-in of the user ends (but the one making the change, from the
    admin UI). Returns how many sign-ins ended."""
    _check_password(password)
    user.set_password(password)
    user.password_changed_at = utcnow()
    ended = revoke_sessions(user, keep_current=keep_current_session)
    record(AuditAction.PASSWORD_CHANGED, actor, target=user,
           detail=f"{ended} other sign-in(s) ended" if keep_current_session else f"{ended} sign-in(s) ended")
    db.session.flush()
    return ended


def change_own_password(user: User, current: str, new: str, confirm: str) -> int:
    """The admin UI's password change: the current password, and the new one twice."""
    if not user.check_password(current or ""):
        raise ValidationError("the current password is wrong", field="current_password")
    if new != confirm:
        raise ValidationError("the new passwords do not match", field="confirm_password")
    if new == current:
        raise ValidationError("the new password is the same as the current one", field="new_password")
    return set_password(user, new, actor=Actor.of(user), keep_current_session=True)


def sign_out_everywhere(user: User | None, *, actor: Actor, keep_current: bool = False,
                        revoke_tokens: bool = False) -> tuple[int, int]:
    """End the sign-ins of one user, or of everyone (`users sign-out-all`, for a suspected
    breach); optionally revoke their API tokens too. Returns (sign-ins ended, tokens revoked)."""
    ended = revoke_sessions(user, keep_current=keep_current)
    revoked = 0
    if revoke_tokens:
        query = update(ApiToken).where(ApiToken.revoked_at.is_(None))
        if user is not None:
            query = query.where(ApiToken.user_id == user.id)
        revoked = db.session.execute(query.values(revoked_at=utcnow())).rowcount
    scope = "everyone" if user is None else ("other sign-ins" if keep_current else "every sign-in")
    record(AuditAction.SESSIONS_REVOKED, actor, target=user,
           detail=f"{scope}: {ended} sign-in(s) ended" + (f", {revoked} token(s) revoked" if revoke_tokens else ""))
    db.session.flush()
    return ended, revoked


# --- API tokens -----------------------------------------------------------------------------

def create_token(email: str, name: str = "", *, actor: Actor | None = None) -> tuple[ApiToken, str]:
    user = find_user(email) if email and "\x00" not in email else None
    if user is None:
        raise NotFoundError(f"no user with email {email}")
    if not user.is_active:
        raise ConflictError(f"{user.email} is disabled; enable the user first", field="email")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user=user, name=name[:100], token_hash=hash_token(token), prefix=token[:10])
    db.session.add(row)
    db.session.flush()
    record(AuditAction.TOKEN_CREATED, actor or Actor.command_line(), target=user,
           detail=f"token {row.id} ({row.prefix}…) {row.name}".strip())
    return row, token


def revoke_token(token_id: int | None = None, *, prefix: str | None = None, actor: Actor | None = None) -> int:
    query = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    elif prefix:
        query = query.where(ApiToken.prefix == prefix[:10])
    else:
        raise ValidationError("give a token id or prefix")
    rows = db.session.execute(query).scalars().all()
    for row in rows:
        row.revoked_at = utcnow()
        record(AuditAction.TOKEN_REVOKED, actor or Actor.command_line(), target=row.user,
               detail=f"token {row.id} ({row.prefix}…)")
    return len(rows)


def user_for_token(token: str) -> User | None:
    """The enabled user a live token acts for, or None."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.session.execute(
        select(ApiToken).join(ApiToken.user).options(contains_eager(ApiToken.user))
        .where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None), User.disabled_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > TOUCH_SECONDS:
        row.last_used_at = now  # throttled so reads don't write on every request
        db.session.commit()
    return row.user
