"""What every parser produces: a list of alerts, each firing or resolved, with labels and times.

Alertmanager and Grafana share one alert shape (Grafana's webhook embeds Alertmanager's template data):
`{"status": "firing"|"resolved", "labels": {...}, "annotations": {...}, "startsAt", "endsAt",
"fingerprint", ...}`; `alert_list` parses it. Uptime Kuma and heartbeats build the same objects.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import ValidationError
from ..timeutil import parse_iso

# One payload is processed in one transaction under the integration's lock: bounded work per request.
MAX_ALERTS = 1000
MAX_LABELS = 200
MAX_FINGERPRINT = 128
MAX_SUMMARY = 300


class PayloadError(ValidationError):
    """The payload is not what this kind of integration sends (400, or the status given)."""


@dataclass(frozen=True)
class Incoming:
    """A receiver request, reduced to what the parsers read (so they never touch Flask)."""

    method: str
    json: Any = None
    form: Mapping[str, str] = field(default_factory=dict)
    args: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IncomingAlert:
    fingerprint: str
    firing: bool
    labels: dict[str, str]
    summary: str
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def describe(self) -> str:
        """Short human name for responses and the admin page."""
        name = self.labels.get("alertname") or self.summary or self.fingerprint
        return name[:120]


@dataclass
class Payload:
    alerts: list[IncomingAlert] = field(default_factory=list)
    # Why a valid payload carries nothing to apply (a test message, a pending check, ...).
    notes: list[str] = field(default_factory=list)


def require_object(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object ({what})")
    return data


def timestamp(value: Any, where: str) -> datetime | None:
    """RFC 3339 into naive UTC. Go's zero time (Alertmanager's endsAt of a firing alert) is None."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 64:
        raise PayloadError(f"{where} must be an RFC 3339 timestamp string")
    if value.startswith("0001-01-01"):
        return None
    try:
        parsed = parse_iso(value)
    except (ValueError, OverflowError):
        raise PayloadError(f"{where} is not a valid RFC 3339 timestamp: {value[:40]!r}") from None
    if not 1970 <= parsed.year <= 9000:
        raise PayloadError(f"{where} is out of range: {value[:40]!r}")
    return parsed


def string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise PayloadError(f"{where} must be an object of string values")
    if len(value) > MAX_LABELS:
        raise PayloadError(f"{where} has {len(value)} entries; at most {MAX_LABELS} are accepted")
    return value


def fingerprint_of(labels: dict[str, str]) -> str:
    """For payloads without a fingerprint: the same labels are the same alert (as in Alertmanager)."""
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode("utf-8", "replace")).hexdigest()[:32]


def summary_of(labels: dict[str, str], annotations: dict[str, str], fallback: str = "") -> str:
    text = annotations.get("summary") or annotations.get("description") or labels.get("alertname") or fallback
    return " ".join(text.split())[:MAX_SUMMARY]


def alert_list(value: Any) -> list[IncomingAlert]:
    """The `alerts` array of an Alertmanager (version 4) or Grafana webhook payload."""
    if not isinstance(value, list):
        raise PayloadError("alerts must be a list of alerts")
    if len(value) > MAX_ALERTS:
        raise PayloadError(f"{len(value)} alerts in one payload; at most {MAX_ALERTS} are accepted "
                           "(set max_alerts in the tool's webhook settings)")
    alerts = []
    for index, item in enumerate(value):
        where = f"alerts[{index}]"
        if not isinstance(item, dict):
            raise PayloadError(f"{where} must be an object")
        status = item.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f'{where}.status must be "firing" or "resolved"')
        labels = string_map(item.get("labels"), f"{where}.labels")
        annotations = string_map(item.get("annotations"), f"{where}.annotations")
        fingerprint = item.get("fingerprint")
        if fingerprint is None or fingerprint == "":
            fingerprint = fingerprint_of(labels)
        elif not isinstance(fingerprint, str) or len(fingerprint) > MAX_FINGERPRINT or not fingerprint.isprintable():
            raise PayloadError(f"{where}.fingerprint must be a printable string of at most {MAX_FINGERPRINT} "
                               "characters")
        alerts.append(IncomingAlert(
            fingerprint=fingerprint,
            firing=status == "firing",
            labels=labels,
            summary=summary_of(labels, annotations),
            starts_at=timestamp(item.get("startsAt"), f"{where}.startsAt"),
            ends_at=timestamp(item.get("endsAt"), f"{where}.endsAt"),
        ))
    return alerts
