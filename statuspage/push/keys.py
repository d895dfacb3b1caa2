"""VAPID keys: stored in the database with the private key encrypted at rest (Fernet, keyed
from SECRET_KEY), or supplied by VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY which override the DB."""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import select, update

from ..errors import ConflictError, ValidationError
from ..extensions import db
from ..models import Subscription, SubscriptionStatus, VapidKey
from ..timeutil import utcnow
from .crypto import generate_vapid_keypair, load_private_key, public_key_b64
from .services import DNS_LABEL_RE


class KeysUnavailable(RuntimeError):
    """No usable VAPID keys (none generated, or SECRET_KEY changed since they were)."""


@dataclass(frozen=True)
class VapidKeys:
    public_key: str
    private_key: str
    subject: str
    source: str  # "environment" or "database"


def _fernet() -> Fernet:
    secret = current_app.config["SECRET_KEY"].encode()
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"statuspage-vapid", info=b"vapid-private-key").derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def default_subject() -> str:
    configured = current_app.config.get("VAPID_SUBJECT")
    if configured:
        return configured
    site = current_app.config["SITE_URL"]
    if site.startswith("https://") and subject_problem(site) is None:
        return site
    host = urlsplit(site).hostname or "localhost"
    if domain_problem(host):
        host = "example.com"  # push services reject subjects without a real domain
    return f"mailto:admin@{host}"


#: Names that never reach anyone (RFC 2606 / RFC 6761 / mDNS): Apple answers 403 BadJwtToken.
_NO_MAIL_TLDS = ("localhost", "local", "invalid", "internal", "localdomain", "home", "lan")


def domain_problem(host: str) -> str | None:
    """Why ``host`` is no domain a push service accepts in a VAPID subject, or None."""
    host = host.lower().rstrip(".")
    if not host:
        return "it has no domain"
    labels = host.split(".")
    if len(labels) < 2 or labels[-1] in _NO_MAIL_TLDS:
        return f"{host} is not a public domain (localhost and local names are refused)"
    if host.replace(".", "").isdigit() or ":" in host or "[" in host:
        return f"{host} is an IP address, not a domain"
    if len(host) > 253 or not all(DNS_LABEL_RE.fullmatch(label) for label in labels) or not labels[-1].isalpha():
        return f"{host} is not a valid domain name"
    return None


def subject_problem(subject: str) -> str | None:
    """Why Apple's push service (the strictest) would refuse this VAPID ``sub``, or None.

    Apple answers 403 BadJwtToken for a ``mailto:`` on localhost or an invalid domain and for a
    ``mailto:`` with a space (``mailto: ops@example.com``) -- for every Safari subscriber at once,
    so it is refused at start-up and in ``vapid generate`` instead."""
    if subject != subject.strip() or re.search(r"\s", subject):
        return "it must not contain spaces (Apple refuses \"mailto: you@example.com\")"
    if subject.startswith("mailto:"):
        address = subject[len("mailto:"):]
        local, at, domain = address.rpartition("@")
        if not at or not local or "@" in local:
            return "a mailto: subject needs one address, like mailto:you@example.com"
        problem = domain_problem(domain)
        return f"the mailto: domain is refused: {problem}" if problem else None
    if subject.startswith("https://"):
        try:
            host = urlsplit(subject).hostname or ""
        except ValueError:
            return "it is not a valid https URL"
        problem = domain_problem(host)
        return f"the https URL's host is refused: {problem}" if problem else None
    return "it must be a mailto: address or an https: URL"


def validate_subject(subject: str) -> str:
    subject = subject.strip()
    problem = subject_problem(subject)
    if problem:
        raise ValidationError(f"VAPID subject {subject!r} would be rejected by Apple's push service: {problem}",
                              field="subject")
    return subject


def stored_key() -> VapidKey | None:
    return db.session.execute(
        select(VapidKey).where(VapidKey.active.is_(True)).order_by(VapidKey.id.desc()).limit(1)
    ).scalar_one_or_none()


def current_keys() -> VapidKeys | None:
    env_public = current_app.config.get("VAPID_PUBLIC_KEY")
    env_private = current_app.config.get("VAPID_PRIVATE_KEY")
    if env_public and env_private:
        return VapidKeys(env_public, env_private, default_subject(), "environment")
    row = stored_key()
    if row is None:
        return None
    try:
        private = _fernet().decrypt(row.private_key_encrypted.encode()).decode()
    except InvalidToken:
        raise KeysUnavailable(
            "the stored VAPID private key cannot be decrypted: SECRET_KEY changed since it was generated; "
            "restore SECRET_KEY or run `flask --app app vapid generate --force`"
        ) from None
    subject = current_app.config.get("VAPID_SUBJECT") or row.subject
    return VapidKeys(row.public_key, private, subject, "database")


def public_key() -> str | None:
    env_public = current_app.config.get("VAPID_PUBLIC_KEY")
    if env_public and current_app.config.get("VAPID_PRIVATE_KEY"):
        return env_public
    row = stored_key()
    return row.public_key if row else None


def generate_keys(*, force: bool = False, subject: str | None = None) -> tuple[VapidKey, int]:
    """Create and store a new keypair; returns it and how many subscriptions were expired."""
    subject = validate_subject(subject or default_subject())
    existing = stored_key()
    if existing is not None and not force:
        raise ConflictError("VAPID keys already exist; use --force to replace them (every subscriber must resubscribe)")
    private, public = generate_vapid_keypair()
    assert public_key_b64(load_private_key(private)) == public
    expired = 0
    if existing is not None:
        db.session.execute(update(VapidKey).values(active=False))
        # Browsers bind a subscription to the applicationServerKey: the old ones can't receive anymore.
        expired = db.session.execute(
            update(Subscription).where(Subscription.status == SubscriptionStatus.ACTIVE)
            .values(status=SubscriptionStatus.EXPIRED, status_reason="key rotated", updated_at=utcnow())
        ).rowcount
    row = VapidKey(
        public_key=public,
        private_key_encrypted=_fernet().encrypt(private.encode()).decode(),
        subject=subject,
        active=True,
    )
    db.session.add(row)
    db.session.flush()
    return row, expired
