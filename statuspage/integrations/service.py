"""Integrations: the functions the admin UI, the admin API, the receivers, the sweeper and jobs share.

How a payload becomes a component status:
- every alert is keyed by (integration, fingerprint); its row says whether it fires and which status
  it asks for (its `severity` label through `status_map`);
- a component's wanted status is the worst status among the firing alerts of ALL enabled
  integrations that point at it (two tools watching one component: one recovering does not clear
  the other's outage); no firing alert means operational;
- the change goes through `components.set_component_status(source=MONITORING)`, so events, debounce,
  trigger toggles and history apply — unless an admin set the status by hand (`status_owner` is
  manual: it stays until handed back) or a maintenance window holds the component.

Concurrency: one payload is one transaction that first locks its integration row, then the rows of
the components it touches, in id order (PostgreSQL row locks; on SQLite the first write takes the
database's write lock, so every read after it is current). The wanted status is computed under
those locks, so two payloads racing for one component always settle on the worst firing alert.
"""
from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update

from .. import validation as v
from ..auth import hash_token
from ..components import create_component, set_component_status
from ..errors import NotFoundError, ValidationError
from ..events import commit
from ..extensions import db
from ..incidents import create_incident, post_update
from ..models import (
    ACTIVE_MAINTENANCE_STATUSES,
    COMPONENT_STATUSES,
    DOWN_STATUSES,
    Component,
    Incident,
    StatusSource,
    incident_components,
)
from ..push.triggers import PLACEHOLDER_RE, render_template_text
from ..timeutil import iso, utcnow
from . import alertmanager, grafana, uptime_kuma
from .alerts import Incoming, IncomingAlert, Payload, PayloadError
from .models import Integration, IntegrationAlert, IntegrationKind, IntegrationReceipt, MonitoringIncident

TOKEN_PREFIX = "sp_hook_"
DEFAULT_STATUS_MAP = {"critical": "major_outage", "warning": "partial_outage", "info": "degraded_performance"}
FALLBACK_STATUS = "major_outage"
SEVERITY_LABEL = "severity"
# A missed heartbeat is an alert of this severity (status_map {"missed": ...} changes what it sets).
MISSED_SEVERITY = "missed"
HEARTBEAT_FINGERPRINT = "heartbeat"
# "Worst wins": under_maintenance is a plan, not a failure, so any outage outranks it.
RANK = {"operational": 0, "under_maintenance": 1, "degraded_performance": 2, "partial_outage": 3, "major_outage": 4}
IMPACT_FOR_STATUS = {"major_outage": "critical", "partial_outage": "major"}
# A firing alert whose endsAt passed this long ago is a stale copy (clocks may differ a little).
EXPIRED_AFTER = timedelta(minutes=5)
RECEIPTS_KEPT = 50
PAYLOAD_KEPT = 8000
RESOLVED_KEPT = timedelta(days=30)
LISTED_IN_ANSWER = 100
INCIDENT_PLACEHOLDERS = ("component_name", "status", "alerts", "integration_name", "site_name")
DEFAULT_INCIDENT = {
    "name": "{component_name}: {status}",
    "body": "Our monitoring reports {component_name} as {status} ({alerts}). We are investigating.",
    "resolve_body": "{component_name} is operational again; our monitoring reports it has recovered.",
}
CHECK_HEARTBEATS_JOB = "statuspage.integrations.service.check_heartbeats"
FIELDS = ("name", "enabled", "component_label", "component_id", "mappings", "status_map", "create_components",
          "interval_seconds", "grace_seconds", "incident")
HEARTBEAT_ONLY = ("interval_seconds", "grace_seconds")
ALERT_KINDS_ONLY = ("component_label", "mappings")
PARSERS = {
    IntegrationKind.ALERTMANAGER: alertmanager,
    IntegrationKind.GRAFANA: grafana,
    IntegrationKind.UPTIME_KUMA: uptime_kuma,
}
HEARTBEAT_METHODS = ("GET", "POST", "HEAD", "PUT")


# --- outcome of one payload -------------------------------------------------------------------------

@dataclass
class Outcome:
    """What a payload did: the receiver's answer and the receipt the admin page shows."""

    accepted: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    ignored: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ignore(self, alert: IncomingAlert, reason: str) -> None:
        self.ignored.append({"alert": alert.describe(), "fingerprint": alert.fingerprint, "reason": reason})

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def http_status(self) -> int:
        """200 when something was applied; 202 for a valid payload that matched nothing."""
        return 200 if self.accepted or self.changed else 202

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"accepted": self.accepted, "changed": self.changed, "held": self.held,
                                "ignored": self.ignored[:LISTED_IN_ANSWER],
                                "warnings": self.warnings[:LISTED_IN_ANSWER], "notes": self.notes}
        if len(self.ignored) > LISTED_IN_ANSWER:
            data["ignored_not_listed"] = len(self.ignored) - LISTED_IN_ANSWER
        return data


# --- tokens, URLs -----------------------------------------------------------------------------------

def new_token() -> str:
    # The prefix lets log redaction (logs.py) recognise a token anywhere in a line.
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def receiver_url(integration: Integration) -> str:
    return f"{current_app.config['SITE_URL']}/api/hooks/{integration.id}"


def receiver_url_with_token(integration: Integration, token: str) -> str:
    """For tools that cannot send an Authorization header: the token is the last path segment."""
    return f"{receiver_url(integration)}/{token}"


def authenticate(integration_id: int, token: str | None) -> Integration | None:
    digest = hash_token(token or "")
    integration = db.session.get(Integration, integration_id)
    if integration is None or not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        hmac.compare_digest(digest, digest)  # same work whether or not the integration exists
        return None
    return integration if hmac.compare_digest(integration.token_hash, digest) else None


# --- configuration ----------------------------------------------------------------------------------

def get_integration(integration_id: int) -> Integration:
    integration = db.session.get(Integration, integration_id)
    if integration is None:
        raise NotFoundError(f"integration {integration_id} not found")
    return integration


def list_integrations() -> list[Integration]:
    return list(db.session.execute(select(Integration).order_by(Integration.id)).scalars())


def create_integration(data: Any) -> tuple[Integration, str]:
    """POST /api/v1/integrations. Returns the row and its token (shown once, stored hashed)."""
    v.require_object(data, ("kind", *FIELDS), what="integration")
    kind = IntegrationKind(v.choice(data, "kind", [k.value for k in IntegrationKind], required=True))
    token = new_token()
    now = utcnow()
    integration = Integration(kind=kind.value, name="", token_hash=hash_token(token), token_prefix=token[:12],
                              enabled=True, component_label="component", mappings=[], status_map={},
                              create_components=False, incident_enabled=False, created_at=now, updated_at=now)
    if kind is IntegrationKind.HEARTBEAT:
        integration.interval_seconds, integration.grace_seconds = 300, 60
    _configure(integration, data, creating=True)
    db.session.add(integration)
    db.session.flush()
    return integration, token


def update_integration(integration: Integration, data: Any) -> Integration:
    """PATCH: partial; kind and token never change here (rotate_token does the token)."""
    v.require_object(data, FIELDS, what="integration")
    integration = lock_integration(integration.id)
    before = (integration.enabled, dict(effective_status_map(integration)), integration.component_id)
    _configure(integration, data, creating=False)
    integration.updated_at = utcnow()
    db.session.flush()
    outcome = Outcome()
    if not integration.enabled and before[0]:
        # Paused: its alerts no longer count (stale by the time it is resumed), a heartbeat waits again.
        _forget_alerts(integration, outcome)
        integration.last_ping_at = None
    elif integration.kind == IntegrationKind.HEARTBEAT and integration.component_id != before[2]:
        _forget_alerts(integration, outcome, extra_components={before[2]} - {None})
        integration.last_ping_at = None
    elif effective_status_map(integration) != before[1]:
        _remap_alerts(integration, outcome)
    return integration


def rotate_token(integration: Integration) -> str:
    token = new_token()
    integration.token_hash = hash_token(token)
    integration.token_prefix = token[:12]
    integration.updated_at = utcnow()
    db.session.flush()
    return token


def delete_integration(integration: Integration) -> None:
    integration = lock_integration(integration.id)
    outcome = Outcome()
    _forget_alerts(integration, outcome)
    db.session.execute(delete(IntegrationReceipt).where(IntegrationReceipt.integration_id == integration.id))
    db.session.execute(update(MonitoringIncident).where(MonitoringIncident.integration_id == integration.id)
                       .values(integration_id=None))
    db.session.delete(integration)
    db.session.flush()


def _configure(integration: Integration, data: dict[str, Any], *, creating: bool) -> None:
    kind = IntegrationKind(integration.kind)
    heartbeat = kind is IntegrationKind.HEARTBEAT
    for name in HEARTBEAT_ONLY if not heartbeat else ALERT_KINDS_ONLY:
        if data.get(name) is not None:
            which = "heartbeat integrations" if name in HEARTBEAT_ONLY else "alert integrations (not heartbeats)"
            raise ValidationError(f"{name} applies to {which} only", field=name)
    if "name" in data or creating:
        integration.name = v.string(data, "name", required=True, max_length=100)
    if "enabled" in data:
        integration.enabled = bool(v.boolean(data, "enabled", default=True))
    if data.get("component_label") is not None:
        integration.component_label = v.string(data, "component_label", required=True, max_length=64)
    if "component_id" in data:
        integration.component_id = _existing_component_id(data, "component_id")
    if heartbeat and integration.component_id is None:
        raise ValidationError("component_id is required: the component this heartbeat watches", field="component_id")
    if "mappings" in data:
        integration.mappings = _mappings(data.get("mappings"))
    if "status_map" in data:
        integration.status_map = _status_map(data.get("status_map"))
    if data.get("create_components") is not None:
        create = bool(v.boolean(data, "create_components"))
        if create and kind is not IntegrationKind.UPTIME_KUMA:
            raise ValidationError("create_components applies to uptime_kuma integrations only",
                                  field="create_components")
        integration.create_components = create
    if heartbeat:
        if "interval_seconds" in data:
            integration.interval_seconds = v.integer(data, "interval_seconds", minimum=10, maximum=7 * 86400,
                                                     required=True)
        if "grace_seconds" in data:
            integration.grace_seconds = v.integer(data, "grace_seconds", minimum=0, maximum=86400, required=True)
    if "incident" in data:
        _incident_config(integration, data["incident"])


def _existing_component_id(data: dict[str, Any], name: str) -> int | None:
    component_id = v.integer(data, name, minimum=1, maximum=v.MAX_ID)
    if component_id is not None and db.session.get(Component, component_id) is None:
        raise ValidationError(f"{name}: component {component_id} does not exist", field=name)
    return component_id


def _mappings(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 100:
        raise ValidationError('mappings must be a list (at most 100) of {"label", "value", "component_id"}',
                              field="mappings")
    rules = []
    for index, item in enumerate(value):
        where = f"mappings[{index}]"
        if not isinstance(item, dict):
            raise ValidationError(f'{where} must be an object {{"label", "value", "component_id"}}', field="mappings")
        try:
            v.require_object(item, ("label", "value", "component_id"), what=where)
            component_id = _existing_component_id(item, "component_id")
            if component_id is None:
                raise ValidationError("component_id is required")
            rules.append({"label": v.string(item, "label", required=True, max_length=64),
                          "value": v.string(item, "value", required=True, max_length=200),
                          "component_id": component_id})
        except ValidationError as exc:
            message = exc.message if exc.message.startswith(where) else f"{where}.{exc.message}"
            raise ValidationError(message, field="mappings") from None
    return rules


def _status_map(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 50:
        raise ValidationError('status_map must be an object (at most 50 entries) like {"critical": "major_outage"}',
                              field="status_map")
    result = {}
    for key, status in value.items():
        severity = key.strip().casefold()
        if not severity or len(severity) > 64 or not severity.isprintable():
            raise ValidationError("status_map keys must be severities of 1-64 printable characters",
                                  field="status_map")
        if status not in COMPONENT_STATUSES:
            raise ValidationError(f"status_map[{key[:64]!r}] must be one of: {', '.join(COMPONENT_STATUSES)}",
                                  field="status_map")
        result[severity] = status
    return result


def _incident_config(integration: Integration, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValidationError('incident must be an object {"enabled", "name", "body", "resolve_body"}',
                              field="incident")
    v.require_object(value, ("enabled", "name", "body", "resolve_body"), what="incident")
    if "enabled" in value:
        integration.incident_enabled = bool(v.boolean(value, "enabled", default=False))
    for key, column, limit in (("name", "incident_name", 300), ("body", "incident_body", 2000),
                               ("resolve_body", "incident_resolve_body", 2000)):
        if key in value:
            text = v.string(value, key, max_length=limit, allow_empty=True)
            for placeholder in PLACEHOLDER_RE.findall(text or ""):
                if placeholder not in INCIDENT_PLACEHOLDERS:
                    raise ValidationError(f"incident.{key}: unknown placeholder {{{placeholder}}}; use one of: "
                                          + ", ".join("{" + p + "}" for p in INCIDENT_PLACEHOLDERS),
                                          field="incident")
            setattr(integration, column, text or None)


def effective_status_map(integration: Integration) -> dict[str, str]:
    if integration.kind == IntegrationKind.HEARTBEAT:
        return {MISSED_SEVERITY: FALLBACK_STATUS, **(integration.status_map or {})}
    return {**DEFAULT_STATUS_MAP, **(integration.status_map or {})}


def status_for(integration: Integration, severity: str | None) -> tuple[str, str | None]:
    """The component status for a severity, and a warning when the severity is not in the map."""
    mapping = effective_status_map(integration)
    key = (severity or "").strip().casefold()
    if key in mapping:
        return mapping[key], None
    if not key:
        return FALLBACK_STATUS, f"alert without a {SEVERITY_LABEL} label: treated as {FALLBACK_STATUS}"
    return FALLBACK_STATUS, f"severity {severity[:64]!r} is not in the status map: treated as {FALLBACK_STATUS}"


# --- locks ------------------------------------------------------------------------------------------

def lock_integration(integration_id: int, *, received: bool = False) -> Integration:
    """Serialise everything that changes one integration's alerts. A write comes first: on PostgreSQL it
    takes the row lock, on SQLite the database's write lock, so every read after it is current."""
    values: dict[str, Any] = {"last_received_at": utcnow()} if received else {"updated_at": Integration.updated_at}
    db.session.execute(update(Integration).where(Integration.id == integration_id).values(**values)
                       .execution_options(synchronize_session=False))
    integration = db.session.get(Integration, integration_id, populate_existing=True)
    if integration is None:
        raise NotFoundError(f"integration {integration_id} not found")
    return integration


def lock_components(ids: set[int]) -> dict[int, Component]:
    """Lock components in id order (so two payloads never deadlock) and read their current state."""
    if not ids:
        return {}
    ordered = sorted(ids)
    if db.engine.dialect.name == "sqlite":
        db.session.execute(update(Component).where(Component.id.in_(ordered))
                           .values(status_owner=Component.status_owner).execution_options(synchronize_session=False))
    rows = db.session.execute(
        select(Component).where(Component.id.in_(ordered)).order_by(Component.id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    return {c.id: c for c in rows}


# --- receiving --------------------------------------------------------------------------------------

def methods_for(kind: str) -> tuple[str, ...]:
    if kind == IntegrationKind.HEARTBEAT:
        return HEARTBEAT_METHODS
    return PARSERS[IntegrationKind(kind)].METHODS


def parse_payload(integration: Integration, incoming: Incoming) -> Payload:
    """The kind's parser; raises PayloadError (4xx) for anything it does not recognise."""
    if integration.kind == IntegrationKind.HEARTBEAT:
        return Payload()
    if incoming.method not in methods_for(integration.kind):
        raise PayloadError(f"{integration.kind} integrations take {' or '.join(methods_for(integration.kind))}",
                           status_code=405)
    return PARSERS[IntegrationKind(integration.kind)].parse(incoming)


def receive(integration_id: int, payload: Payload) -> Outcome:
    """Apply one parsed payload (the caller commits). A heartbeat payload is a ping."""
    integration = lock_integration(integration_id, received=True)
    outcome = Outcome(notes=list(payload.notes))
    if integration.kind == IntegrationKind.HEARTBEAT:
        _ping(integration, outcome)
    else:
        _apply_alerts(integration, payload.alerts, outcome)
    return outcome


def record_receipt(integration_id: int, *, http_status: int, method: str, body: bytes | str,
                   result: dict[str, Any] | None = None, error: str | None = None) -> None:
    """What came in and what it did, for the admin page (the caller commits). Never the token."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text[:PAYLOAD_KEPT].replace("\x00", "\ufffd")
    db.session.add(IntegrationReceipt(integration_id=integration_id, received_at=utcnow(), http_status=http_status,
                                      method=method[:8], payload=text, result=result or {},
                                      error=error[:500] if error else None))


def record_refusal(integration_id: int, *, http_status: int, method: str, body: bytes, error: str) -> None:
    """A payload the receiver refused changes no alert and no component; only its receipt is kept."""
    db.session.execute(update(Integration).where(Integration.id == integration_id)
                       .values(last_received_at=utcnow()).execution_options(synchronize_session=False))
    record_receipt(integration_id, http_status=http_status, method=method, body=body, error=error)


class _Directory:
    """Components by id and by case-folded name, loaded once per payload."""

    def __init__(self) -> None:
        self.by_id: dict[int, Component] = {}
        self.by_name: dict[str, Component] = {}
        for component in db.session.execute(select(Component).order_by(Component.position, Component.id)).scalars():
            self.add(component)

    def add(self, component: Component) -> None:
        self.by_id[component.id] = component
        self.by_name.setdefault(" ".join(component.name.split()).casefold(), component)

    def find(self, value: str) -> Component | None:
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 10:
            found = self.by_id.get(int(text))
            if found is not None:
                return found
        return self.by_name.get(" ".join(text.split()).casefold())


def _component_for(integration: Integration, alert: IncomingAlert, directory: _Directory) \
        -> tuple[Component | None, str]:
    """Mapping rules first, then the component label, then (Uptime Kuma) the monitor's name, then the
    integration's default component."""
    labels = alert.labels
    for index, rule in enumerate(integration.mappings or []):
        value = labels.get(rule["label"])
        if value is not None and value.strip().casefold() == rule["value"].strip().casefold():
            component = directory.by_id.get(rule["component_id"])
            if component is None:
                return None, f"mapping rule {index + 1} points to a component that no longer exists"
            return component, ""
    label = integration.component_label or "component"
    named = labels.get(label)
    if named is None and integration.kind == IntegrationKind.UPTIME_KUMA:
        named = labels.get("monitor")
    if named is not None:
        component = directory.find(named)
        if component is None and integration.create_components and named.strip():
            component = create_component({"name": named.strip()[:200]})
            directory.add(component)
        if component is None:
            return None, f"no component named or numbered {named[:100]!r} (label {label!r})"
        return component, ""
    if integration.component_id is not None and integration.component_id in directory.by_id:
        return directory.by_id[integration.component_id], ""
    return None, f"no {label!r} label and no mapping rule matched"


def _stale(row: IntegrationAlert | None, alert: IncomingAlert, now: datetime) -> str | None:
    """Replays: a notification about an older episode of the alert than the one stored, a firing copy
    of an alert already resolved, or a firing alert whose own endsAt has long passed."""
    if alert.firing and alert.ends_at is not None and alert.ends_at < now - EXPIRED_AFTER:
        return f"stale: firing alert whose endsAt ({iso(alert.ends_at)}) has passed"
    if row is None:
        return None
    if alert.starts_at and row.starts_at and alert.starts_at < row.starts_at:
        return f"replay: older than the episode already recorded (started {iso(row.starts_at)})"
    if alert.firing and not row.firing and row.ends_at and alert.starts_at and alert.starts_at <= row.ends_at:
        return f"replay: this alert was already resolved at {iso(row.ends_at)}"
    if not alert.firing and row.firing and alert.ends_at and row.starts_at and alert.ends_at < row.starts_at:
        return f"replay: a resolution older than the firing episode (started {iso(row.starts_at)})"
    return None


def _trimmed(labels: dict[str, str]) -> dict[str, str]:
    return {k[:64]: val[:200] for k, val in list(labels.items())[:30]}


def _apply_alerts(integration: Integration, alerts: list[IncomingAlert], outcome: Outcome) -> None:
    if not alerts:
        return
    directory = _Directory()
    fingerprints = {a.fingerprint for a in alerts}
    existing = {row.fingerprint: row for row in db.session.execute(
        select(IntegrationAlert).where(IntegrationAlert.integration_id == integration.id,
                                       IntegrationAlert.fingerprint.in_(fingerprints))).scalars()}
    plans: list[tuple[IncomingAlert, int]] = []
    for alert in alerts:
        component, reason = _component_for(integration, alert, directory)
        row = existing.get(alert.fingerprint)
        if component is None and row is not None and not alert.firing:
            component = directory.by_id.get(row.component_id)  # a resolution follows its alert's component
        if component is None:
            outcome.ignore(alert, reason)
            continue
        plans.append((alert, component.id))
    touched = {cid for _, cid in plans} | {existing[a.fingerprint].component_id for a, _ in plans
                                           if a.fingerprint in existing}
    locked = lock_components(touched)
    now = utcnow()
    for alert, component_id in plans:
        row = existing.get(alert.fingerprint)
        problem = _stale(row, alert, now) if component_id in locked else "the component was just deleted"
        if problem:
            outcome.ignore(alert, problem)
            continue
        if row is None:
            row = IntegrationAlert(integration_id=integration.id, fingerprint=alert.fingerprint, firing=False,
                                   status="operational", starts_at=None)
            db.session.add(row)
            existing[alert.fingerprint] = row
        same_episode = row.firing and (alert.starts_at is None or alert.starts_at == row.starts_at)
        row.component_id = component_id
        row.summary = alert.summary
        row.labels = _trimmed(alert.labels)
        row.updated_at = now
        if alert.firing:
            severity = alert.labels.get(SEVERITY_LABEL)
            row.status, warning = status_for(integration, severity)
            if warning:
                outcome.warn(warning)
            row.severity = severity[:64] if severity else None
            row.starts_at = alert.starts_at or (row.starts_at if same_episode else now)
            row.ends_at = None
            row.firing = True
        else:
            row.firing = False
            row.starts_at = alert.starts_at or row.starts_at
            row.ends_at = alert.ends_at or now
        outcome.accepted += 1
    db.session.flush()
    for component_id in sorted(locked):
        settle(locked[component_id], integration, outcome)


def wanted_status(component_id: int) -> tuple[str, list[IntegrationAlert]]:
    """The worst status among the firing alerts of enabled integrations for a component."""
    firing = list(db.session.execute(
        select(IntegrationAlert).join(Integration, Integration.id == IntegrationAlert.integration_id)
        .where(IntegrationAlert.component_id == component_id, IntegrationAlert.firing.is_(True),
               Integration.enabled.is_(True))
        .order_by(IntegrationAlert.id)).scalars())
    worst = max((a.status for a in firing), key=lambda s: RANK.get(s, 0), default="operational")
    return worst, firing


def _in_maintenance(component_id: int) -> bool:
    return db.session.execute(
        select(func.count()).select_from(incident_components)
        .join(Incident, Incident.id == incident_components.c.incident_id)
        .where(incident_components.c.component_id == component_id, Incident.kind == "maintenance",
               Incident.status.in_(ACTIVE_MAINTENANCE_STATUSES))
    ).scalar_one() > 0


def settle(component: Component, integration: Integration | None, outcome: Outcome) -> None:
    """Set a (locked) component to what its firing alerts want, unless an admin or a maintenance holds it."""
    wanted, firing = wanted_status(component.id)
    if wanted == component.status:
        return
    held_by = None
    if component.status_owner == StatusSource.MANUAL:
        held_by = "set by hand: hand it back to monitoring to apply"
    elif component.status == "under_maintenance" and _in_maintenance(component.id):
        held_by = "under maintenance"
    if held_by:
        outcome.held.append({"component_id": component.id, "component": component.name, "status": component.status,
                             "wanted": wanted, "reason": held_by})
        return
    change = set_component_status(component, wanted, source=StatusSource.MONITORING)
    if change:
        outcome.changed.append({"component_id": component.id, "component": component.name,
                                "old_status": change["old_status"], "new_status": change["new_status"]})
        _follow_with_incident(component, change["old_status"], wanted, integration, firing)


def _follow_with_incident(component: Component, old: str, new: str, integration: Integration | None,
                          firing: list[IntegrationAlert]) -> None:
    """Optionally (per integration, off by default) open an incident when a component goes down, and
    post a resolving update when it is operational again."""
    link = db.session.get(MonitoringIncident, component.id)
    if new in DOWN_STATUSES and old not in DOWN_STATUSES:
        if integration is None or not integration.incident_enabled or link is not None:
            return
        values = _incident_values(component, new, integration, firing)
        incident = create_incident({
            "name": render_template_text(integration.incident_name or DEFAULT_INCIDENT["name"], values)[:300],
            "status": "investigating",
            "impact": IMPACT_FOR_STATUS[new],
            "body": render_template_text(integration.incident_body or DEFAULT_INCIDENT["body"], values),
            "component_ids": [component.id],
        })
        db.session.add(MonitoringIncident(component_id=component.id, incident_id=incident.id,
                                          integration_id=integration.id, opened_at=utcnow()))
    elif new == "operational" and link is not None:
        incident = link.incident
        if not incident.is_resolved:
            opener = link.integration
            template = (opener.incident_resolve_body if opener else None) or DEFAULT_INCIDENT["resolve_body"]
            values = _incident_values(component, new, opener, firing)
            post_update(incident, {"status": "resolved", "body": render_template_text(template, values)})
        db.session.delete(link)


def _incident_values(component: Component, status: str, integration: Integration | None,
                     firing: list[IntegrationAlert]) -> dict[str, str]:
    names = ", ".join(dict.fromkeys(a.summary or a.fingerprint for a in firing)) or "no alert firing"
    return {"component_name": component.name, "status": status.replace("_", " "), "alerts": names[:500],
            "integration_name": integration.name if integration else "monitoring",
            "site_name": current_app.config["SITE_NAME"]}


def _forget_alerts(integration: Integration, outcome: Outcome, extra_components: set[int] = frozenset()) -> None:
    """Drop an integration's alerts (paused, deleted, heartbeat moved) and settle what they held down."""
    component_ids = set(db.session.execute(
        select(IntegrationAlert.component_id).where(IntegrationAlert.integration_id == integration.id)
    ).scalars()) | set(extra_components)
    db.session.execute(delete(IntegrationAlert).where(IntegrationAlert.integration_id == integration.id))
    db.session.flush()
    locked = lock_components(component_ids)
    for component_id in sorted(locked):
        settle(locked[component_id], None, outcome)


def _remap_alerts(integration: Integration, outcome: Outcome) -> None:
    """status_map changed: firing alerts ask for the status their severity now maps to."""
    rows = list(db.session.execute(select(IntegrationAlert).where(
        IntegrationAlert.integration_id == integration.id, IntegrationAlert.firing.is_(True))).scalars())
    locked = lock_components({r.component_id for r in rows})
    for row in rows:
        if integration.kind == IntegrationKind.HEARTBEAT:
            row.status = status_for(integration, MISSED_SEVERITY)[0]
        else:
            row.status = status_for(integration, row.severity)[0]
    db.session.flush()
    for component_id in sorted(locked):
        settle(locked[component_id], integration, outcome)


# --- heartbeats -------------------------------------------------------------------------------------

def heartbeat_deadline(integration: Integration) -> datetime | None:
    if integration.last_ping_at is None:
        return None
    return integration.last_ping_at + timedelta(seconds=(integration.interval_seconds or 0)
                                                + (integration.grace_seconds or 0))


def _heartbeat_row(integration: Integration) -> IntegrationAlert | None:
    return db.session.execute(select(IntegrationAlert).where(
        IntegrationAlert.integration_id == integration.id,
        IntegrationAlert.fingerprint == HEARTBEAT_FINGERPRINT)).scalar_one_or_none()


def _ping(integration: Integration, outcome: Outcome) -> None:
    now = utcnow()
    integration.last_ping_at = now
    outcome.accepted += 1
    row = _heartbeat_row(integration)
    if row is not None and row.firing:
        locked = lock_components({row.component_id})
        row.firing, row.ends_at, row.updated_at = False, now, now
        db.session.flush()
        for component in locked.values():
            settle(component, integration, outcome)
    outcome.notes.append(f"ping received; the next one is due by {iso(heartbeat_deadline(integration))}")
    # A precise check when this ping's deadline passes (the sweeper is the backstop).
    delay = (integration.interval_seconds or 0) + (integration.grace_seconds or 0) + 1
    db.session.info.setdefault("after_commit_jobs", []).append((CHECK_HEARTBEATS_JOB, delay))


def check_heartbeats() -> int:
    """Job and sweeper: a heartbeat whose ping is overdue by interval + grace sets its component down.
    A heartbeat that never pinged waits for its first ping. Returns how many were marked missed."""
    now = utcnow()
    candidates = db.session.execute(select(Integration.id, Integration.last_ping_at, Integration.interval_seconds,
                                           Integration.grace_seconds).where(
        Integration.kind == IntegrationKind.HEARTBEAT.value, Integration.enabled.is_(True),
        Integration.last_ping_at.is_not(None), Integration.component_id.is_not(None))).all()
    missed = 0
    for integration_id, last_ping, interval, grace in candidates:
        if now < last_ping + timedelta(seconds=(interval or 0) + (grace or 0)):
            continue
        if db.session.execute(select(IntegrationAlert.firing).where(
                IntegrationAlert.integration_id == integration_id,
                IntegrationAlert.fingerprint == HEARTBEAT_FINGERPRINT)).scalar_one_or_none():
            continue  # already marked missed
        if _mark_missed(integration_id, now):
            missed += 1
        commit()
    return missed


def _mark_missed(integration_id: int, now: datetime) -> bool:
    integration = lock_integration(integration_id)
    deadline = heartbeat_deadline(integration)
    row = _heartbeat_row(integration)
    if (deadline is None or now < deadline or not integration.enabled or integration.component_id is None
            or (row is not None and row.firing)):
        return False  # a ping (or a racing check) got there first
    locked = lock_components({integration.component_id})
    if not locked:
        return False
    if row is None:
        row = IntegrationAlert(integration_id=integration.id, fingerprint=HEARTBEAT_FINGERPRINT)
        db.session.add(row)
    row.component_id = integration.component_id
    row.firing = True
    row.status = status_for(integration, MISSED_SEVERITY)[0]
    row.severity = MISSED_SEVERITY
    row.summary = f"no ping since {iso(integration.last_ping_at)}"
    row.labels = {"alertname": "missed heartbeat"}
    row.starts_at, row.ends_at, row.updated_at = deadline, None, now
    db.session.flush()
    outcome = Outcome(accepted=1, notes=[f"missed: no ping by {iso(deadline)}"])
    for component in locked.values():
        settle(component, integration, outcome)
    record_receipt(integration.id, http_status=0, method="MISSED", body="", result=outcome.to_dict())
    return True


# --- ownership, reconciliation, housekeeping --------------------------------------------------------

def hand_back(component: Component) -> Outcome:
    """An admin hands a component back to monitoring: it takes whatever its firing alerts say now."""
    db.session.flush()
    db.session.execute(update(Component).where(Component.id == component.id)
                       .values(status_owner=StatusSource.MONITORING.value).execution_options(synchronize_session=False))
    locked = lock_components({component.id})
    outcome = Outcome()
    for row in locked.values():
        settle(row, None, outcome)
    return outcome


def reconcile_components() -> int:
    """Sweeper backstop: a monitored component that monitoring owns but whose status is not what its
    firing alerts want (a maintenance window ended while an alert fired) is set right."""
    wanted: dict[int, str] = {}
    for component_id, status, firing in db.session.execute(
            select(IntegrationAlert.component_id, IntegrationAlert.status, IntegrationAlert.firing)
            .join(Integration, Integration.id == IntegrationAlert.integration_id)
            .where(Integration.enabled.is_(True))).all():
        current = wanted.setdefault(component_id, "operational")
        if firing and RANK.get(status, 0) > RANK.get(current, 0):
            wanted[component_id] = status
    if not wanted:
        return 0
    fixed = 0
    for component_id, status in db.session.execute(
            select(Component.id, Component.status).where(Component.id.in_(wanted),
                                                         Component.status_owner == StatusSource.MONITORING.value)
            .order_by(Component.id)).all():
        if status == wanted[component_id] or (status == "under_maintenance" and _in_maintenance(component_id)):
            continue
        outcome = Outcome()
        for row in lock_components({component_id}).values():
            settle(row, None, outcome)
        commit()
        fixed += len(outcome.changed)
    return fixed


def prune() -> int:
    """Keep the latest RECEIPTS_KEPT receipts per integration and resolved alerts for RESOLVED_KEPT."""
    removed = 0
    for integration_id in db.session.execute(select(Integration.id)).scalars().all():
        cutoff = db.session.execute(
            select(IntegrationReceipt.id).where(IntegrationReceipt.integration_id == integration_id)
            .order_by(IntegrationReceipt.id.desc()).offset(RECEIPTS_KEPT).limit(1)).scalar_one_or_none()
        if cutoff is not None:
            removed += db.session.execute(delete(IntegrationReceipt).where(
                IntegrationReceipt.integration_id == integration_id, IntegrationReceipt.id <= cutoff)).rowcount
    removed += db.session.execute(delete(IntegrationAlert).where(
        IntegrationAlert.firing.is_(False), IntegrationAlert.updated_at < utcnow() - RESOLVED_KEPT)).rowcount
    commit()
    return removed


# --- what the admin API and pages show ----------------------------------------------------------------

def heartbeat_state(integration: Integration) -> str:
    if not integration.enabled:
        return "paused"
    if integration.last_ping_at is None:
        return "waiting for the first ping"
    row = _heartbeat_row(integration)
    return "missed" if row is not None and row.firing else "up"


def receipt_dict(receipt: IntegrationReceipt, *, with_payload: bool = False) -> dict[str, Any]:
    data = {"id": receipt.id, "received_at": iso(receipt.received_at), "method": receipt.method,
            "http_status": receipt.http_status, "result": receipt.result or {}, "error": receipt.error}
    if with_payload:
        data["payload"] = receipt.payload
    return data


def alert_dict(row: IntegrationAlert) -> dict[str, Any]:
    return {"fingerprint": row.fingerprint, "component_id": row.component_id, "firing": row.firing,
            "status": row.status, "severity": row.severity, "summary": row.summary, "labels": row.labels,
            "starts_at": iso(row.starts_at), "ends_at": iso(row.ends_at)}


def recent_receipts(integration: Integration, limit: int = 20) -> list[IntegrationReceipt]:
    return list(db.session.execute(select(IntegrationReceipt).where(
        IntegrationReceipt.integration_id == integration.id).order_by(IntegrationReceipt.id.desc())
        .limit(limit)).scalars())


def firing_alerts(integration: Integration) -> list[IntegrationAlert]:
    return list(db.session.execute(select(IntegrationAlert).where(
        IntegrationAlert.integration_id == integration.id, IntegrationAlert.firing.is_(True))
        .order_by(IntegrationAlert.id)).scalars())


def integration_dict(integration: Integration, *, detail: bool = False, token: str | None = None) -> dict[str, Any]:
    """The API's shape. `token` only right after create/rotate: it is shown that once, never stored."""
    kind = IntegrationKind(integration.kind)
    data: dict[str, Any] = {
        "id": integration.id, "kind": kind.value, "name": integration.name, "enabled": integration.enabled,
        "url": receiver_url(integration), "token_prefix": integration.token_prefix,
        "component_id": integration.component_id,
        "incident": {"enabled": integration.incident_enabled,
                     "name": integration.incident_name or DEFAULT_INCIDENT["name"],
                     "body": integration.incident_body or DEFAULT_INCIDENT["body"],
                     "resolve_body": integration.incident_resolve_body or DEFAULT_INCIDENT["resolve_body"]},
        "created_at": iso(integration.created_at), "updated_at": iso(integration.updated_at),
        "last_received_at": iso(integration.last_received_at),
    }
    if kind is IntegrationKind.HEARTBEAT:
        data.update(interval_seconds=integration.interval_seconds, grace_seconds=integration.grace_seconds,
                    last_ping_at=iso(integration.last_ping_at), next_ping_due=iso(heartbeat_deadline(integration)),
                    heartbeat_state=heartbeat_state(integration))
    else:
        data.update(component_label=integration.component_label, mappings=integration.mappings or [])
    data["status_map"] = effective_status_map(integration)
    if kind is IntegrationKind.UPTIME_KUMA:
        data["create_components"] = integration.create_components
    receipts = recent_receipts(integration, 20 if detail else 1)
    data["last_receipt"] = receipt_dict(receipts[0], with_payload=detail) if receipts else None
    firing = firing_alerts(integration)
    data["firing_count"] = len(firing)
    if detail:
        data["firing"] = [alert_dict(a) for a in firing]
        data["receipts"] = [receipt_dict(r) for r in receipts]
    if token is not None:
        data.update(token=token, url_with_token=receiver_url_with_token(integration, token))
    return data


def monitoring_overview() -> dict[int, dict[str, Any]]:
    """Per component: firing alerts (all enabled integrations) and the status they want — for the
    components page, which shows who owns each status."""
    overview: dict[int, dict[str, Any]] = {}
    rows = db.session.execute(
        select(IntegrationAlert.component_id, IntegrationAlert.status, IntegrationAlert.summary)
        .join(Integration, Integration.id == IntegrationAlert.integration_id)
        .where(IntegrationAlert.firing.is_(True), Integration.enabled.is_(True))).all()
    for component_id, status, summary in rows:
        entry = overview.setdefault(component_id, {"firing": 0, "wanted": "operational", "alerts": []})
        entry["firing"] += 1
        entry["alerts"].append(summary)
        if RANK.get(status, 0) > RANK.get(entry["wanted"], 0):
            entry["wanted"] = status
    watched = set(db.session.execute(select(IntegrationAlert.component_id).distinct()).scalars())
    watched |= set(db.session.execute(select(Integration.component_id).where(
        Integration.component_id.is_not(None))).scalars())
    for component_id in watched:
        overview.setdefault(component_id, {"firing": 0, "wanted": "operational", "alerts": []})
    return overview
