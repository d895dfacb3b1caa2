"""Time helpers: everything is stored as naive UTC and rendered in the site's time zone."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def utcnow() -> datetime:
    """Naive UTC now; SQLite has no time zones, so we store naive UTC everywhere."""
    return datetime.now(UTC).replace(tzinfo=None)


def site_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["SITE_TIMEZONE"])


def to_site(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(site_tz())


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in the site's zone with offset, the way Statuspage's API writes times."""
    local = to_site(value)
    return local.isoformat(timespec="milliseconds") if local else None


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp into naive UTC; naive input is taken as UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
