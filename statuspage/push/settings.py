"""Site-wide push settings (enabled, icon, badge, debounce, maintenance reminder lead times)."""
from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import current_app
from sqlalchemy.exc import IntegrityError

from .. import validation as v
from ..errors import ValidationError
from ..extensions import db
from ..models import PushSettings
from .keys import KeysUnavailable, current_keys, public_key

SETTINGS_FIELDS = ("enabled", "icon_url", "badge_url", "debounce_seconds", "payload_format",
                   "maintenance_reminder_minutes")
#: formats.PayloadFormat values (kept here as strings: formats imports triggers imports this module).
PAYLOAD_FORMATS = ("auto", "classic", "declarative")
DEFAULT_REMINDER_MINUTES = (60,)
MAX_REMINDERS = 5
MAX_REMINDER_MINUTES = 7 * 24 * 60  # a week ahead
DEFAULT_ICON = "/static/icons/icon-192.png"
DEFAULT_BADGE = "/static/icons/badge-96.png"


def get_settings() -> PushSettings:
    settings = db.session.get(PushSettings, 1)
    if settings is None:
        # The first request (or job) to need the row creates it; a page view and the fan-out job
        # can get here at the same moment, so losing that race must not be an error.
        try:
            with db.session.begin_nested():
                settings = PushSettings(id=1, enabled=True)
                db.session.add(settings)
        except IntegrityError:
            settings = db.session.get(PushSettings, 1)
            if settings is None:
                raise
    return settings


def push_available() -> bool:
    """Visitors may subscribe: push is enabled and usable keys exist (a stored key that the
    current SECRET_KEY cannot decrypt could sign nothing, so subscribing would be a lie)."""
    settings = db.session.get(PushSettings, 1)
    if settings is not None and not settings.enabled:
        return False
    try:
        return current_keys() is not None
    except KeysUnavailable:
        return False


def absolute_url(path_or_url: str) -> str:
    return urljoin(current_app.config["SITE_URL"] + "/", path_or_url)


def icon_url(settings: PushSettings) -> str:
    return absolute_url(settings.icon_url or DEFAULT_ICON)


def badge_url(settings: PushSettings) -> str:
    return absolute_url(settings.badge_url or DEFAULT_BADGE)


def _image_url(data: dict, name: str) -> str | None:
    value = v.string(data, name, max_length=500)
    if value is None:
        return None
    parts = urlsplit(value)
    if value.startswith("/") and not value.startswith("//"):
        return value
    if parts.scheme != "https" or not parts.netloc:
        raise ValidationError(f"{name} must be a site path like /static/x.png or an https:// URL", field=name)
    return value


def reminder_minutes(settings: PushSettings) -> list[int]:
    """The maintenance.reminder lead times, largest first (the default when never set)."""
    value = settings.maintenance_reminder_minutes
    return sorted(DEFAULT_REMINDER_MINUTES if value is None else value, reverse=True)


def parse_reminder_minutes(value: Any) -> list[int]:
    """A list of minutes before a maintenance starts ([] = no reminders); the admin form sends
    them as text ("1440, 60"), the API as a JSON list."""
    name = "maintenance_reminder_minutes"
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split()]
    if not isinstance(value, list):
        raise ValidationError(f"{name} must be a list of minutes, e.g. [1440, 60]", field=name)
    if len(value) > MAX_REMINDERS:
        raise ValidationError(f"{name} may hold at most {MAX_REMINDERS} lead times", field=name)
    minutes = {v.parse_int(item, name, minimum=1, maximum=MAX_REMINDER_MINUTES) for item in value}
    return sorted(minutes, reverse=True)


def update_settings(data: dict[str, Any]) -> PushSettings:
    v.require_object(data, SETTINGS_FIELDS, what="push settings")
    settings = get_settings()
    if "enabled" in data:
        settings.enabled = v.boolean(data, "enabled", default=True)
    if "icon_url" in data:
        settings.icon_url = _image_url(data, "icon_url")
    if "badge_url" in data:
        settings.badge_url = _image_url(data, "badge_url")
    if "debounce_seconds" in data:
        settings.debounce_seconds = v.integer(data, "debounce_seconds", minimum=0, maximum=3600)
    if "payload_format" in data:
        settings.payload_format = v.choice(data, "payload_format", PAYLOAD_FORMATS, required=True)
    if "maintenance_reminder_minutes" in data:
        before = set(reminder_minutes(settings))
        settings.maintenance_reminder_minutes = parse_reminder_minutes(data["maintenance_reminder_minutes"])
        db.session.flush()
        from ..reminders import lead_times_added  # (reminders reads these settings)

        lead_times_added(sorted(set(reminder_minutes(settings)) - before, reverse=True))
    db.session.flush()
    return settings


def settings_dict(settings: PushSettings) -> dict[str, Any]:
    return {
        "enabled": settings.enabled,
        "configured": public_key() is not None,
        "public_key": public_key(),
        "icon_url": settings.icon_url,
        "badge_url": settings.badge_url,
        "icon": icon_url(settings),
        "badge": badge_url(settings),
        "debounce_seconds": settings.debounce_seconds
        if settings.debounce_seconds is not None else current_app.config["PUSH_DEBOUNCE_SECONDS"],
        "payload_format": settings.payload_format or "auto",
        "maintenance_reminder_minutes": reminder_minutes(settings),
    }
