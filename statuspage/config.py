"""Configuration from the environment (a `.env` file is loaded by python-dotenv)."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .validation import ascii_int


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app."""


def _bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if not value:
        return default
    number = ascii_int(value.strip())
    if number is None:
        raise ConfigError(f"{name} must be an integer written with the digits 0-9, got {value!r}")
    return number


_ASCII_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def _float(name: str, default: float) -> float:
    """A decimal number in ASCII (float() alone would also read "١.٥" and "inf")."""
    value = os.environ.get(name)
    if not value:
        return default
    if not _ASCII_DECIMAL.fullmatch(value.strip()):
        raise ConfigError(f"{name} must be a number written with the digits 0-9 (e.g. 0.25), got {value!r}")
    return float(value.strip())


def load_config(instance_path: str) -> dict:
    """Build the Flask config mapping from environment variables."""
    debug = _bool("FLASK_DEBUG") or os.environ.get("FLASK_ENV") == "development"
    default_db = "sqlite:///" + str(Path(instance_path) / "statuspage.db")
    database_url = os.environ.get("DATABASE_URL") or default_db
    # Heroku-style URLs name the old driver; we ship psycopg 3.
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://"):]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://"):]
    site_url = (os.environ.get("SITE_URL") or "http://127.0.0.1:5000").rstrip("/")
    return {
        "DEBUG_MODE": debug,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or None,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": os.environ.get("REDIS_URL") or None,
        "RQ_QUEUE": os.environ.get("RQ_QUEUE", "statuspage"),
        "SITE_URL": site_url,
        "SITE_NAME": os.environ.get("SITE_NAME") or "Status",
        "SITE_TIMEZONE": os.environ.get("SITE_TIMEZONE") or "Etc/UTC",
        "SITE_LOGO_URL": os.environ.get("SITE_LOGO_URL") or None,
        "VAPID_PUBLIC_KEY": os.environ.get("VAPID_PUBLIC_KEY") or None,
        "VAPID_PRIVATE_KEY": os.environ.get("VAPID_PRIVATE_KEY") or None,
        "VAPID_SUBJECT": os.environ.get("VAPID_SUBJECT") or None,
        "PUSH_EXTRA_ORIGINS": [
            o.strip().rstrip("/") for o in os.environ.get("PUSH_EXTRA_ORIGINS", "").split(",") if o.strip()
        ],
        "PUSH_CA_BUNDLE": os.environ.get("PUSH_CA_BUNDLE") or None,
        "PUSH_CONCURRENCY": _int("PUSH_CONCURRENCY", 256),
        "PUSH_BATCH_SIZE": _int("PUSH_BATCH_SIZE", 2000),
        "PUSH_TIMEOUT": _int("PUSH_TIMEOUT", 10),
        "PUSH_DEBOUNCE_SECONDS": _int("PUSH_DEBOUNCE_SECONDS", 60),
        # Deliveries a push service deferred (429, 5xx, timeout) are tried again: push/retry.py.
        "PUSH_MAX_ATTEMPTS": _int("PUSH_MAX_ATTEMPTS", 6),
        "PUSH_RETRY_BACKOFF": os.environ.get("PUSH_RETRY_BACKOFF") or "5,30,120,600,1800",
        "PUSH_MAX_RETRY_DELAY": _int("PUSH_MAX_RETRY_DELAY", 3600),
        "SWEEP_INTERVAL": _int("SWEEP_INTERVAL", 30),
        # A batch whose progress stopped this long ago is taken over by the sweeper (dead worker).
        "PUSH_STALL_SECONDS": _int("PUSH_STALL_SECONDS", 300),
        # Expired/unsubscribed subscriptions older than this many days are deleted by the sweeper
        # (1000 per run); 0 keeps them forever.
        "PUSH_PRUNE_DAYS": _int("PUSH_PRUNE_DAYS", 30),
        # Active subscriptions with no successful delivery and no visit (the page re-sends its
        # subscription at most daily) for this many days are expired by the sweeper; 0 never.
        "PUSH_STALE_DAYS": _int("PUSH_STALE_DAYS", 60),
        # How many reverse proxies in front of the app append X-Forwarded-For/-Proto (0 = none:
        # the headers are ignored, so a client cannot pick its own rate-limit key).
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        "RATELIMIT_ENABLED": _bool("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI")
        or os.environ.get("REDIS_URL")
        or "memory://",
        "RATELIMIT_HEADERS_ENABLED": True,
        "RATELIMIT_KEY_PREFIX": "statuspage",
        # Redis down must not take the subscribe API down with it (the page is needed most during
        # outages): limits fall back to per-process memory, and a storage error never becomes a 500.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        # Per client IP; each is a Flask-Limiter string ("30 per minute; 300 per day").
        "RATELIMIT_SUBSCRIBE": os.environ.get("RATELIMIT_SUBSCRIBE") or "30 per minute; 300 per day",
        "RATELIMIT_UNSUBSCRIBE": os.environ.get("RATELIMIT_UNSUBSCRIBE") or "30 per minute",
        "RATELIMIT_TEST_PUSH": os.environ.get("RATELIMIT_TEST_PUSH") or "3 per minute; 20 per day",
        # The service worker's seen/opened reports (POST /api/push/reports), per client address.
        "RATELIMIT_PUSH_REPORTS": os.environ.get("RATELIMIT_PUSH_REPORTS") or "120 per minute; 2000 per day",
        # Failed sign-ins only (a correct password never counts).
        "RATELIMIT_LOGIN": os.environ.get("RATELIMIT_LOGIN") or "10 per minute; 50 per hour",
        # Integration receivers (/api/hooks/<id>): per integration, counting accepted requests; and per
        # client address, counting wrong tokens only. Alertmanager sends at most one request per alert
        # group and group_interval, so 120/min leaves room for bursts; a 429 is sent again by the tool.
        "RATELIMIT_INTEGRATION": os.environ.get("RATELIMIT_INTEGRATION") or "120 per minute",
        "RATELIMIT_INTEGRATION_AUTH": os.environ.get("RATELIMIT_INTEGRATION_AUTH") or "30 per minute",
        "MAX_CONTENT_LENGTH": _int("MAX_CONTENT_LENGTH", 64 * 1024),
        # Receiver bodies may be larger than forms and API calls (about 1 KB per alert in a group).
        "INTEGRATION_MAX_BYTES": _int("INTEGRATION_MAX_BYTES", 1024 * 1024),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": site_url.startswith("https://"),
        "REMEMBER_COOKIE_SECURE": site_url.startswith("https://"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "WTF_CSRF_TIME_LIMIT": None,
        "JOBS_EAGER": _bool("JOBS_EAGER", False),
        # The published snapshot (statuspage/publish): where the public files go ("off" to serve
        # everything live), their cache headers, and how the publisher coalesces and spreads work.
        "PUBLIC_SNAPSHOT_DIR": os.environ.get("PUBLIC_SNAPSHOT_DIR") or None,
        "PUBLIC_MAX_AGE": _int("PUBLIC_MAX_AGE", 10),
        "PUBLIC_STALE_WHILE_REVALIDATE": _int("PUBLIC_STALE_WHILE_REVALIDATE", 30),
        "PUBLIC_STALE_IF_ERROR": _int("PUBLIC_STALE_IF_ERROR", 86400),
        "PUBLISH_MIN_INTERVAL": _float("PUBLISH_MIN_INTERVAL", 0.25),
        "PUBLISH_BUDGET_SECONDS": _float("PUBLISH_BUDGET_SECONDS", 1.0),
        "PUBLISH_SWEEP_AFTER": _int("PUBLISH_SWEEP_AFTER", 5),
    }
