"""Visitor push subscriptions: validation (including which endpoints may ever be contacted),
subscribe/resubscribe/unsubscribe, and the admin listing."""
from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import and_, case, delete, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from .. import validation as v
from ..database import dialect, insert
from ..errors import NotFoundError, ServiceError, ValidationError
from ..extensions import db
from ..models import Component, Delivery, Subscription, SubscriptionStatus, subscription_components
from ..timeutil import iso, utcnow
from .crypto import validate_auth, validate_p256dh
from .services import DNS_LABEL_RE, KNOWN_SERVICES, PushService, service_of_host

# Hosts of the browser push services (exact host or any subdomain of the suffixes), from
# services.KNOWN_SERVICES: one list for the allow-list and for each service's quirks.
PUSH_SERVICE_HOSTS = tuple(host for info in KNOWN_SERVICES for host in info.hosts)
PUSH_SERVICE_SUFFIXES = tuple(suffix for info in KNOWN_SERVICES for suffix in info.suffixes)
MAX_ENDPOINT = 2048
SUBSCRIBE_FIELDS = ("endpoint", "expirationTime", "keys", "components", "oldEndpoint", "maintenance", "resolved")
# The visitor's choices besides components: request field -> Subscription column. Both default to
# true (a new subscriber hears everything the admin's triggers send); a request that leaves one
# out keeps what the subscription had, so a re-sent or moved subscription never loses a choice.
CHOICES = {"maintenance": "notify_maintenance", "resolved": "notify_resolved"}
# What each choice governs (matching_ids in push.delivery applies it): `maintenance` every event
# whose type starts with this prefix (scheduled, reminder, started, completed), `resolved` the
# "it is over" notices of incidents and of components.
MAINTENANCE_EVENT_PREFIX = "maintenance."
RESOLVED_EVENTS = ("incident.resolved", "component.recovered")
# A push service host as it appears in the URL: DNS labels only, optional numeric port. Anything
# else (percent-escapes, empty labels, "[...]", ";", an empty port) is refused before the allow-list.
_NETLOC_RE = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?")
# Checked again before every send, so it is on the fan-out's hot path: a regex instead of a
# per-character generator, and the configured origins normalized once per configuration.
_CONTROL_OR_SPACE_RE = re.compile(r"[\x00-\x20\x7f]")


def normalize_origin(url: str) -> str | None:
    """scheme://host[:port] with default ports dropped and the host lowercased, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def canonical_endpoint(url: str) -> str:
    """The one spelling of an endpoint, so one device is one row however its URL is written:
    lower-case scheme and host, no default port (":443", ":0443" and none are the same), the path
    and query exactly as given (push services treat them as case-sensitive tokens). Meant for URLs
    `endpoint_problem` accepts; anything else comes back unchanged."""
    origin = normalize_origin(url)
    if origin is None:
        return url
    parts = urlsplit(url)
    return origin + parts.path + (f"?{parts.query}" if parts.query else "")


def extra_origins() -> frozenset[str]:
    return _normalized_origins(tuple(current_app.config.get("PUSH_EXTRA_ORIGINS", [])))


@lru_cache(maxsize=16)
def _normalized_origins(configured: tuple[str, ...]) -> frozenset[str]:
    return frozenset(o for o in (normalize_origin(x) for x in configured) if o)


def endpoint_problem(url: Any) -> str | None:
    """Why `url` may not be used as a push endpoint, or None when it may. Checked at subscribe
    time and again before every send: only known push services and PUSH_EXTRA_ORIGINS."""
    if not isinstance(url, str) or not url:
        return "endpoint must be a non-empty string"
    if len(url) > MAX_ENDPOINT:
        return f"endpoint must be at most {MAX_ENDPOINT} characters"
    if not url.isascii() or _CONTROL_OR_SPACE_RE.search(url) or "\\" in url:
        return "endpoint must be a plain ASCII URL without spaces, control characters or backslashes"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "endpoint is not a valid URL"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "endpoint must not contain user info"
    origin = normalize_origin(url)
    if origin is None:
        return "endpoint must be an http(s) URL"
    if not parts.path or parts.path == "/":
        return "endpoint must include the push service's path"
    if parts.fragment:
        return "endpoint must not contain a fragment"
    if origin in extra_origins():
        return None
    if parts.scheme != "https":
        return "endpoint must use https"
    if port not in (None, 443):
        return "endpoint must use the default https port"
    host = parts.hostname or ""
    if host.endswith("."):
        return "endpoint host must not end with a dot"
    if ":" in host or host.replace(".", "").isdigit():  # the only shapes an IP literal can take
        try:
            ipaddress.ip_address(host.strip("[]"))
            return "endpoint must name a push service host, not an IP address"
        except ValueError:
            pass
    labels = host.split(".")
    if not _NETLOC_RE.fullmatch(parts.netloc) or not all(DNS_LABEL_RE.fullmatch(label) for label in labels):
        return "endpoint host is not a valid DNS name"
    if any(label[2:4] == "--" for label in labels):
        # IDNA: "xn--" labels are punycode for non-ASCII names (look-alikes such as
        # "xn--80ak6aa92e.push.apple.com"), and any other "??--" label is reserved. No push service
        # uses one, so none is accepted, not even under an allowed suffix.
        return "endpoint host must not contain IDNA (xn--) or other reserved ??-- labels"
    if service_of_host(host) is not PushService.OTHER:
        return None
    return f"endpoint host {host} is not a known push service"


def is_allowed_endpoint(url: str) -> bool:
    return endpoint_problem(url) is None


def browser_family(user_agent: str | None) -> str:
    ua = (user_agent or "").lower()
    if "edg/" in ua:
        return "Edge"
    if "opr/" in ua or "opera" in ua:
        return "Opera"
    if "samsungbrowser" in ua:
        return "Samsung Internet"
    if "firefox/" in ua or "fxios" in ua:
        return "Firefox"
    if "chrome/" in ua or "chromium/" in ua or "crios" in ua:
        return "Chrome"
    if "safari/" in ua and ("iphone" in ua or "ipad" in ua):
        return "Safari (iOS)"
    if "safari/" in ua:
        return "Safari"
    return "Other"


def _expiration(data: dict) -> datetime | None:
    value = data.get("expirationTime")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 2**53:
        raise ValidationError("expirationTime must be null or a timestamp in milliseconds", field="expirationTime")
    try:
        return datetime.fromtimestamp(value / 1000, UTC).replace(tzinfo=None)
    except (OverflowError, OSError, ValueError):
        raise ValidationError("expirationTime is out of range", field="expirationTime") from None


def _components(data: dict) -> list[Component] | None:
    ids = v.id_list(data, "components", max_items=500)
    if not ids:
        return None
    found = db.session.execute(select(Component).where(Component.id.in_(ids))).scalars().all()
    missing = sorted(set(ids) - {c.id for c in found})
    if missing:
        raise ValidationError(f"unknown component id(s): {', '.join(map(str, missing))}", field="components")
    return list(found)


def parse_subscription(data: Any) -> dict[str, Any]:
    v.require_object(data, SUBSCRIBE_FIELDS, what="subscription")
    endpoint = data.get("endpoint")
    problem = endpoint_problem(endpoint)
    if problem:
        raise ValidationError(problem, field="endpoint")
    keys = data.get("keys")
    if not isinstance(keys, dict):
        raise ValidationError("keys must be an object with p256dh and auth", field="keys")
    unknown = sorted(set(keys) - {"p256dh", "auth"})
    if unknown:
        raise ValidationError(f"unknown field(s) in keys: {', '.join(unknown)}", field="keys")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str) or len(p256dh) > 100 or len(auth) > 40:
        raise ValidationError("keys.p256dh and keys.auth must be base64url strings", field="keys")
    try:
        validate_p256dh(p256dh)
    except ValueError as exc:
        raise ValidationError(f"keys.p256dh: {exc}", field="keys.p256dh") from None
    try:
        validate_auth(auth)
    except ValueError as exc:
        raise ValidationError(f"keys.auth: {exc}", field="keys.auth") from None
    old = data.get("oldEndpoint")
    if old is not None and (not isinstance(old, str) or len(old) > MAX_ENDPOINT):
        raise ValidationError("oldEndpoint must be the previous endpoint URL", field="oldEndpoint")
    return {
        "endpoint": canonical_endpoint(endpoint), "p256dh": p256dh.rstrip("="), "auth": auth.rstrip("="),
        "expiration_time": _expiration(data), "components": _components(data),
        "old_endpoint": _lookup_spelling(old) if old else None,
        "choices": {column: value for name, column in CHOICES.items()
                    if (value := v.boolean(data, name)) is not None},
    }


def get_subscription(subscription_id: int) -> Subscription:
    sub = db.session.get(Subscription, subscription_id)
    if sub is None:
        raise NotFoundError(f"subscription {subscription_id} not found")
    return sub


def active_subscription_ids(subscription_id: int | None = None) -> list[int]:
    """Ids of the active subscriptions (only `subscription_id`, if given), oldest first."""
    query = select(Subscription.id).where(Subscription.status == SubscriptionStatus.ACTIVE)
    if subscription_id is not None:
        query = query.where(Subscription.id == subscription_id)
    return list(db.session.execute(query.order_by(Subscription.id)).scalars())


def _lookup_spelling(endpoint: str) -> str:
    """How an endpoint a visitor names is looked up: canonical when it is a valid one (rows are
    stored canonical), as given otherwise (it then matches nothing)."""
    return canonical_endpoint(endpoint) if endpoint_problem(endpoint) is None else endpoint


def find_subscription(endpoint: str) -> Subscription | None:
    return db.session.execute(
        select(Subscription).where(Subscription.endpoint == _lookup_spelling(endpoint))
    ).scalar_one_or_none()


def subscribe(data: Any, user_agent: str | None = None) -> tuple[Subscription, bool]:
    """Create or update the subscription for an endpoint; returns (subscription, created).

    An upsert on the canonical endpoint: INSERT ... ON CONFLICT (endpoint) DO NOTHING, then an
    UPDATE of the row that was there. However many requests for one endpoint race (a page open in
    several tabs, a service worker and a page, a retrying client), each ends in one row and a 200
    or 201 -- never an IntegrityError 500: PostgreSQL makes a racing INSERT wait for the first and
    then do nothing; SQLite runs writers one at a time."""
    parsed = parse_subscription(data)
    endpoint, now = parsed["endpoint"], utcnow()
    changes: dict[str, Any] = {
        "p256dh": parsed["p256dh"], "auth": parsed["auth"], "expiration_time": parsed["expiration_time"],
        "status": SubscriptionStatus.ACTIVE, "status_reason": None, "updated_at": now,
        "all_components": parsed["components"] is None, **parsed["choices"],
        "last_seen_at": now,  # the page re-sends its subscription on visits: the browser still has it
    }
    if user_agent is not None:
        changes["browser"] = browser_family(user_agent)
    old = parsed["old_endpoint"]
    moved = bool(old) and old != endpoint and _move_endpoint(old, endpoint, now)
    for _ in range(3):  # a row deleted between the two statements (pruning) is inserted again
        sub_id = db.session.execute(
            insert(Subscription).values(endpoint=endpoint, created_at=now, last_active_at=now,
                                        **{"browser": "Other", **changes})
            .on_conflict_do_nothing(index_elements=["endpoint"]).returning(Subscription.id)
        ).scalar()
        created = sub_id is not None and not moved
        if sub_id is None:
            sub_id = db.session.execute(
                update(Subscription).where(Subscription.endpoint == endpoint)
                .values(last_active_at=func.coalesce(Subscription.last_active_at, now), **changes)
                .returning(Subscription.id).execution_options(synchronize_session=False)
            ).scalar()
        if sub_id is not None:
            break
    else:
        raise ServiceError("the subscription changed while saving it; try again", status_code=503)
    db.session.execute(delete(subscription_components).where(subscription_components.c.subscription_id == sub_id))
    if parsed["components"]:
        db.session.execute(
            insert(subscription_components).values([{"subscription_id": sub_id, "component_id": c.id}
                                                    for c in parsed["components"]]).on_conflict_do_nothing())
    if old and old != endpoint and not moved:
        db.session.execute(
            update(Subscription).where(Subscription.endpoint == old, Subscription.id != sub_id)
            .values(status=SubscriptionStatus.EXPIRED, status_reason="replaced by a new subscription", updated_at=now)
            .execution_options(synchronize_session=False))
    sub = db.session.get(Subscription, sub_id, populate_existing=True)
    return sub, created


def _move_endpoint(old: str, new: str, now: datetime) -> bool:
    """pushsubscriptionchange: the old row (its id, filters and history) takes the new endpoint,
    unless a row for the new one exists already. True when it moved."""
    move = (update(Subscription)
            .where(Subscription.endpoint == old,
                   ~select(Subscription.id).where(Subscription.endpoint == new).exists())
            .values(endpoint=new, updated_at=now).execution_options(synchronize_session=False))
    if dialect() == "sqlite":  # one writer at a time: the NOT EXISTS holds until the commit
        return db.session.execute(move).rowcount == 1
    try:
        # PostgreSQL: a racing request may insert the new endpoint after our NOT EXISTS looked;
        # the unique index then refuses the move, which only this savepoint undoes.
        with db.session.begin_nested():
            return db.session.execute(move).rowcount == 1
    except IntegrityError:
        return False


def unsubscribe(data: Any) -> Subscription:
    v.require_object(data, ("endpoint",), what="body")
    endpoint = v.string(data, "endpoint", required=True, max_length=MAX_ENDPOINT)
    sub = find_subscription(endpoint)  # any spelling of it
    if sub is None:
        raise NotFoundError("no subscription with that endpoint")
    sub.status, sub.status_reason = SubscriptionStatus.UNSUBSCRIBED, "unsubscribed by the visitor"
    sub.updated_at = utcnow()
    sub.components = []
    sub.notify_maintenance = sub.notify_resolved = True  # a later subscribe starts from the defaults
    db.session.flush()
    return sub


def prune_subscriptions(older_than_days: float, limit: int = 1000) -> int:
    """Delete up to `limit` expired/unsubscribed subscriptions not updated for `older_than_days`,
    with their delivery rows; returns how many. Small batches keep each transaction short."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    ids = list(db.session.execute(
        select(Subscription.id).where(
            Subscription.status.in_((SubscriptionStatus.EXPIRED, SubscriptionStatus.UNSUBSCRIBED)),
            Subscription.updated_at < cutoff)
        .order_by(Subscription.id).limit(limit)
    ).scalars())
    if not ids:
        return 0
    db.session.execute(delete(Delivery).where(Delivery.subscription_id.in_(ids)))
    db.session.execute(delete(subscription_components).where(subscription_components.c.subscription_id.in_(ids)))
    db.session.execute(delete(Subscription).where(Subscription.id.in_(ids)))
    db.session.commit()
    return len(ids)


def endpoint_of_service(service: PushService):
    """SQL: the subscription's endpoint belongs to `service` (push_service's rule, by host). Stored
    endpoints are canonical (lower-case host, no default port) and known services' need https and a
    path, so a host suffix is a LIKE; the NOT LIKE keeps the match inside the host, not the path."""
    [info] = [i for i in KNOWN_SERVICES if i.service == service]
    column = Subscription.endpoint
    return or_(false(), *(column.like(f"https://{host}/%") for host in info.hosts),
               *(and_(column.like(f"https://%{suffix}/%"), ~column.like(f"https://%/%{suffix}/%"))
                 for suffix in info.suffixes))


def expire_stale_subscriptions(stale_days: float, limit: int = 1000) -> int:
    """Expire up to ``limit`` active subscriptions with no proof of life for ``stale_days``; returns
    how many. Proof of life is a visit (the page re-sends its subscription, at most daily) or, except
    on Apple's push service, a successful delivery: Safari can keep answering 201 for a subscription
    it revoked, so there only visits count, and a silent subscription is not kept forever."""
    now = utcnow()
    cutoff = now - timedelta(days=stale_days)
    delivered_lately = ~endpoint_of_service(PushService.APPLE) \
        & (func.coalesce(Subscription.last_active_at, Subscription.created_at) >= cutoff)
    stale = (Subscription.status == SubscriptionStatus.ACTIVE) & (Subscription.created_at < cutoff) \
        & ~delivered_lately \
        & (func.coalesce(Subscription.last_seen_at, Subscription.created_at) < cutoff)
    ids = list(db.session.execute(select(Subscription.id).where(stale).order_by(Subscription.id).limit(limit))
               .scalars())
    if not ids:
        return 0
    reason = case((endpoint_of_service(PushService.APPLE), f"stale: no visit for {stale_days:g} days"),
                  else_=f"stale: no delivery and no visit for {stale_days:g} days")
    expired = db.session.execute(
        update(Subscription).where(Subscription.id.in_(ids), stale)
        .values(status=SubscriptionStatus.EXPIRED, updated_at=now, status_reason=reason)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return expired


def subscription_dict(sub: Subscription) -> dict[str, Any]:
    return {
        "id": sub.id,
        "endpoint_origin": normalize_origin(sub.endpoint),
        "browser": sub.browser,
        "created_at": iso(sub.created_at),
        "last_active_at": iso(sub.last_active_at),
        "last_seen_at": iso(sub.last_seen_at),
        "status": sub.status,
        "status_reason": sub.status_reason,
        "components": "all" if sub.all_components else [c.id for c in sub.components],
        **choices_dict(sub),
    }


def choices_dict(sub: Subscription) -> dict[str, bool]:
    """The visitor's choices as the API names them: {"maintenance": bool, "resolved": bool}."""
    return {name: getattr(sub, column) for name, column in CHOICES.items()}


def list_subscriptions(status: str | None = None, limit: int = 100, offset: int = 0) -> tuple[list[Subscription], dict]:
    query = select(Subscription)
    if status:
        query = query.where(Subscription.status == status)
    rows = db.session.execute(query.order_by(Subscription.id.desc()).limit(limit).offset(offset)).scalars().all()
    counts = dict(db.session.execute(select(Subscription.status, func.count()).group_by(Subscription.status)).all())
    return list(rows), counts
