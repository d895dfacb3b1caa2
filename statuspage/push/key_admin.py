"""Key management from the admin's push settings page: generate the VAPID keys when there are
none, and rotate them once the admin has confirmed how many subscriptions will expire (browsers
bind a subscription to the key, so every active one stops receiving; a page left open notices the
new public key and resubscribes silently, as subscribe.js already does). The command line's
`vapid generate [--force]` does the same through `keys.generate_keys`."""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import func, select

from ..audit import Actor, AuditAction, record
from ..errors import ConflictError
from ..extensions import db
from ..models import Subscription, SubscriptionStatus, VapidKey
from .keys import default_subject, generate_keys, stored_key

ENV_KEYS = ("the keys come from VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY in the environment; "
            "change them there (every subscriber must resubscribe)")


def keys_from_environment() -> bool:
    return bool(current_app.config.get("VAPID_PUBLIC_KEY") and current_app.config.get("VAPID_PRIVATE_KEY"))


def active_subscription_count() -> int:
    """How many subscriptions a rotation would expire."""
    return db.session.execute(
        select(func.count()).select_from(Subscription).where(Subscription.status == SubscriptionStatus.ACTIVE)
    ).scalar_one()


def key_management(stored: VapidKey | None = None) -> dict[str, Any]:
    """What the settings page offers: generate (no keys), rotate (stored keys, usable or not)."""
    stored = stored if stored is not None else stored_key()
    from_env = keys_from_environment()
    return {
        "from_environment": from_env,
        "can_generate": not from_env and stored is None,
        "can_rotate": not from_env and stored is not None,
        "subject": stored.subject if stored is not None else default_subject(),
        "active_subscriptions": active_subscription_count(),
    }


def generate_first_keys(actor: Actor, subject: str | None = None) -> VapidKey:
    if keys_from_environment():
        raise ConflictError(ENV_KEYS)
    if stored_key() is not None:
        raise ConflictError("VAPID keys already exist; rotate them instead")
    row, _ = generate_keys(subject=subject or None)
    record(AuditAction.VAPID_GENERATED, actor, detail=f"subject {row.subject}")
    return row


def rotate_keys(actor: Actor, confirmed_expiring: int, subject: str | None = None) -> tuple[VapidKey, int]:
    """Replace the keys; `confirmed_expiring` is the count the admin was shown. If more or fewer
    subscriptions are active now, nothing changes and the admin is asked again with the new count."""
    if keys_from_environment():
        raise ConflictError(ENV_KEYS)
    current = stored_key()
    if current is None:
        raise ConflictError("there are no VAPID keys to rotate; generate them first")
    expiring = active_subscription_count()
    if expiring != confirmed_expiring:
        raise ConflictError(f"{expiring} subscription(s) would expire now, not {confirmed_expiring}; "
                            "confirm again", field="confirm_expiring")
    row, expired = generate_keys(force=True, subject=subject or current.subject)
    record(AuditAction.VAPID_ROTATED, actor, detail=f"subject {row.subject}; {expired} subscription(s) expired")
    return row, expired
