"""Time helpers: everything is stored as naive UTC and rendered in the site's time zone."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import current_app


def system_utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


#: Where `utcnow` reads the time. Tests swap it for a fake clock (tests/clock.py) to walk through
#: hours of schedule (maintenance reminders, starts and ends) without sleeping.
clock: Callable[[], datetime] = system_utcnow


def utcnow() -> datetime:
    """Naive UTC now; SQLite has no time zones, so we store naive UTC everywhere."""
    return clock()


def site_tz() -> ZoneInfo:
    return ZoneInfo(current_app.config["SITE_TIMEZONE"])


def to_site(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(site_tz())


# Zone abbreviations that mean UTC itself (Etc/UTC, UTC, Etc/UCT...), not a zone that happens to
# sit at +00:00 (Europe/London in winter writes +00:00, as Statuspage's Rails does).
UTC_NAMES = ("UTC", "UCT")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in the site's zone, with milliseconds, the way Statuspage's API writes times:
    `2024-09-16T22:08:39.333Z` on a page in UTC, `2021-06-30T11:28:03.815-07:00` elsewhere."""
    local = to_site(value)
    if local is None:
        return None
    text = local.isoformat(timespec="milliseconds")
    if local.tzname() in UTC_NAMES:
        return text[:-6] + "Z"
    return text


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 timestamp into naive UTC; naive input is taken as UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed
