"""Users and API tokens: the functions the CLI, admin UI and API authentication share."""
from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from .errors import ConflictError, NotFoundError, ValidationError
from .extensions import db, login_manager
from .models import ROLES, ApiToken, User
from .timeutil import utcnow

TOKEN_PREFIX = "sp_"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    if not user_id.isdigit():
        return None
    return db.session.get(User, int(user_id))


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or len(email) > 254 or email.startswith("@") or email.endswith("@"):
        raise ValidationError("a valid email address is required", field="email")
    return email


def create_user(email: str, password: str, role: str = "admin") -> User:
    email = normalize_email(email)
    if role not in ROLES:
        raise ValidationError(f"role must be one of: {', '.join(ROLES)}", field="role")
    if len(password or "") < 8:
        raise ValidationError("password must be at least 8 characters", field="password")
    if find_user(email) is not None:
        raise ConflictError(f"a user with email {email} already exists", field="email")
    user = User(email=email, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    return user


def find_user(email: str) -> User | None:
    return db.session.execute(select(User).where(User.email == email.strip().lower())).scalar_one_or_none()


def authenticate(email: str, password: str) -> User | None:
    # NUL can't be in a stored email (and PostgreSQL refuses it in a query): treat as unknown.
    user = find_user(email) if email and "\x00" not in email else None
    if user is None:
        # Spend the same time hashing so response time does not reveal which emails exist.
        User(password_hash="").set_password(password or "x")
        return None
    return user if user.check_password(password or "") else None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(email: str, name: str = "") -> tuple[ApiToken, str]:
    user = find_user(email)
    if user is None:
        raise NotFoundError(f"no user with email {email}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user=user, name=name[:100], token_hash=hash_token(token), prefix=token[:10])
    db.session.add(row)
    db.session.flush()
    return row, token


def revoke_token(token_id: int | None = None, *, prefix: str | None = None) -> int:
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
    return len(rows)


def user_for_token(token: str) -> User | None:
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = db.session.execute(
        select(ApiToken).where(ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None))
    ).scalar_one_or_none()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        row.last_used_at = now  # throttled so reads don't write on every request
        db.session.commit()
    return row.user
