"""Per-event trigger toggles and their notification templates; payload building."""
from __future__ import annotations

import json
import re
import time
from datetime import UTC
from typing import Any

from flask import current_app
from sqlalchemy import select

from .. import validation as v
from ..errors import ValidationError
from ..extensions import db
from ..markdown import plain_text
from ..models import EVENT_TYPES, INCIDENT_IMPACTS, Component, Event, PushSettings, Trigger
from .crypto import MAX_PLAINTEXT
from .settings import absolute_url, badge_url, get_settings, icon_url

PLACEHOLDERS = ("site_name", "incident_name", "status", "impact", "component_name", "update_body", "url",
                "starts_at", "starts_in")
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
URGENCIES = ("very-low", "low", "normal", "high")

DEFAULT_TRIGGERS: dict[str, dict[str, Any]] = {
    "incident.created": {"enabled": True, "urgency": "high",
                         "title": "{site_name}: {incident_name}", "body": "{status} — {update_body}"},
    "incident.updated": {"enabled": True, "urgency": "normal",
                         "title": "{site_name}: {incident_name}", "body": "{status} — {update_body}"},
    "incident.resolved": {"enabled": True, "urgency": "normal",
                          "title": "Resolved: {incident_name}", "body": "{update_body}"},
    "component.down": {"enabled": False, "urgency": "high",
                       "title": "{component_name} is down", "body": "{site_name}: {component_name} — {status}"},
    "component.recovered": {"enabled": False, "urgency": "normal", "title": "{component_name} recovered",
                            "body": "{site_name}: {component_name} is operational again"},
    "maintenance.started": {"enabled": False, "urgency": "normal",
                            "title": "Maintenance started: {incident_name}", "body": "{update_body}"},
    "maintenance.scheduled": {"enabled": False, "urgency": "low",
                              "title": "Maintenance scheduled: {incident_name}", "body": "{update_body}"},
    "maintenance.completed": {"enabled": False, "urgency": "low",
                              "title": "Maintenance completed: {incident_name}", "body": "{update_body}"},
    "maintenance.reminder": {"enabled": True, "urgency": "normal",
                             "title": "Maintenance in {starts_in}: {incident_name}",
                             "body": "Starts {starts_at}. {update_body}"},
}
TRIGGER_FIELDS = ("enabled", "title_template", "body_template", "urgency", "ttl", "min_impact", "component_ids")


def ensure_triggers() -> dict[str, Trigger]:
    rows = {t.event_type: t for t in db.session.execute(select(Trigger)).scalars()}
    for event_type in EVENT_TYPES:
        if event_type not in rows:
            d = DEFAULT_TRIGGERS[event_type]
            rows[event_type] = Trigger(event_type=event_type, enabled=d["enabled"], title_template=d["title"],
                                       body_template=d["body"], urgency=d["urgency"], ttl=86400)
            db.session.add(rows[event_type])
    db.session.flush()
    return rows


def get_trigger(event_type: str) -> Trigger:
    trigger = db.session.get(Trigger, event_type)
    return trigger if trigger is not None else ensure_triggers()[event_type]


def trigger_dict(t: Trigger) -> dict[str, Any]:
    return {"event": t.event_type, "enabled": t.enabled, "title_template": t.title_template,
            "body_template": t.body_template, "urgency": t.urgency, "ttl": t.ttl,
            "min_impact": t.min_impact, "component_ids": t.component_ids or []}


def has_impact(event_type: str) -> bool:
    """Only incident events carry an impact a trigger's `min_impact` can be compared with."""
    return event_type.startswith("incident.")


def condition_reason(trigger: Trigger, event: Event) -> str | None:
    """Why the trigger's conditions keep this event from being sent, or None. An event about no
    component in particular (an incident without components) concerns the whole site and passes
    a component condition, as it reaches subscribers who chose components."""
    ctx = event.context or {}
    if trigger.min_impact and has_impact(event.type):
        impact = ctx.get("impact") or "none"
        rank = INCIDENT_IMPACTS.index
        if impact in INCIDENT_IMPACTS and rank(impact) < rank(trigger.min_impact):
            return f"impact {impact} is below the {event.type} trigger's minimum ({trigger.min_impact})"
    if trigger.component_ids:
        about = ctx.get("component_ids") or ([event.component_id] if event.component_id else [])
        if about and not set(about) & set(trigger.component_ids):
            return f"the {event.type} trigger is limited to other components"
    return None


def _conditions(row: Trigger, event_type: str, changes: dict) -> None:
    if "min_impact" in changes:
        impact = v.choice(changes, "min_impact", INCIDENT_IMPACTS)
        if impact not in (None, "none") and not has_impact(event_type):
            raise ValidationError(f"min_impact applies to incident events only, not to {event_type}",
                                  field="min_impact")
        row.min_impact = None if impact == "none" else impact
    if "component_ids" in changes:
        ids = v.id_list(changes, "component_ids") or []
        for cid in ids:
            if db.session.get(Component, cid) is None:
                raise ValidationError(f"component_ids: component {cid} does not exist", field="component_ids")
        row.component_ids = sorted(ids) or None


def check_template(template: str, field: str) -> str:
    for name in PLACEHOLDER_RE.findall(template):
        if name not in PLACEHOLDERS:
            raise ValidationError(
                f"{field}: unknown placeholder {{{name}}}; use one of: "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
                field=field,
            )
    return template


def update_triggers(data: Any) -> list[Trigger]:
    """PUT /api/v1/triggers: {"incident.created": {"enabled": true, ...}, ...} (partial per event)."""
    if isinstance(data, list):
        items = {}
        for item in data:
            if not isinstance(item, dict) or not isinstance(item.get("event"), str):
                raise ValidationError('each trigger in the list needs an "event" field')
            items[item["event"]] = {k: val for k, val in item.items() if k != "event"}
        data = items
    if not isinstance(data, dict):
        raise ValidationError("body must be an object keyed by event type")
    rows = ensure_triggers()
    unknown = sorted(set(data) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(f"unknown event type(s): {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    for event_type, changes in data.items():
        v.require_object(changes, TRIGGER_FIELDS, what=f"trigger {event_type}")
        row = rows[event_type]
        if "enabled" in changes:
            row.enabled = v.boolean(changes, "enabled", default=row.enabled)
        if "title_template" in changes:
            row.title_template = check_template(
                v.string(changes, "title_template", required=True, max_length=300), "title_template")
        if "body_template" in changes:
            row.body_template = check_template(
                v.string(changes, "body_template", max_length=1000, allow_empty=True, default="") or "",
                "body_template")
        if "urgency" in changes:
            row.urgency = v.choice(changes, "urgency", URGENCIES, required=True)
        if "ttl" in changes:
            row.ttl = v.integer(changes, "ttl", minimum=0, maximum=28 * 86400, required=True)
        _conditions(row, event_type, changes)
    db.session.flush()
    return [rows[e] for e in EVENT_TYPES]


def render_template_text(template: str, values: dict[str, str]) -> str:
    """Plain `{name}` substitution (never str.format: templates are admin text, values are data)."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def event_values(event: Event) -> dict[str, str]:
    ctx = event.context or {}
    status = ctx.get("status") or ""
    url = ctx.get("url") or current_app.config["SITE_URL"] + "/"
    return {
        "site_name": current_app.config["SITE_NAME"],
        "incident_name": ctx.get("incident_name") or "",
        "status": status.replace("_", " ").capitalize(),
        "impact": (ctx.get("impact") or "").capitalize(),
        "component_name": ctx.get("component_name") or "",
        "update_body": plain_text(ctx.get("update_body") or ""),
        "url": url,
        # maintenance reminders: the start in the site's zone, and how far ahead it is
        "starts_at": ctx.get("starts_at") or "",
        "starts_in": ctx.get("starts_in") or "",
    }


def event_tag(event: Event) -> str:
    if event.type.startswith("component.") and event.component_id:
        return f"component-{event.component_id}"
    if event.incident_id:
        prefix = "maintenance" if event.type.startswith("maintenance.") else "incident"
        return f"{prefix}-{event.incident_id}"
    return f"event-{event.id}"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    raw = text.encode()
    if len(raw) <= max_bytes:
        return text
    # errors="ignore" drops a partial trailing character: the cut lands on a UTF-8 boundary.
    return raw[: max(0, max_bytes - 3)].decode("utf-8", errors="ignore").rstrip() + "…"


def encode_payload(payload: dict[str, Any], limit: int = MAX_PLAINTEXT) -> bytes:
    """JSON-encode, shortening body (then title) so the encrypted message stays within 4096 bytes."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    for field in ("body", "title"):
        while len(data) > limit and payload.get(field):
            excess = len(data) - limit
            current = payload[field].encode()
            payload[field] = _truncate_utf8(payload[field], max(0, len(current) - excess - 4))
            if payload[field] == "…":
                payload[field] = ""
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) > limit:
        raise ValueError("notification payload does not fit in a push message")
    return data


def build_payload(event: Event, trigger: Trigger, settings: PushSettings) -> dict[str, Any]:
    values = event_values(event)
    return {
        "title": render_template_text(trigger.title_template, values).strip() or current_app.config["SITE_NAME"],
        "body": render_template_text(trigger.body_template, values).strip(),
        "icon": icon_url(settings),
        "badge": badge_url(settings),
        "url": absolute_url(values["url"]),
        "tag": event_tag(event),
        "event": event.type,
        "event_id": event.id,  # all a service worker's seen/opened report names (push.seen)
        "timestamp": int(event.created_at.replace(tzinfo=UTC).timestamp() * 1000)
        if event.created_at else int(time.time() * 1000),
    }


def preview_payloads() -> dict[str, dict[str, Any]]:
    """What the admin composer's live preview needs: each trigger's templates and the images."""
    settings = get_settings()
    return {
        t.event_type: {
            "enabled": t.enabled, "title": t.title_template, "body": t.body_template,
            "icon": icon_url(settings), "site_name": current_app.config["SITE_NAME"],
            "push_enabled": settings.enabled,
        }
        for t in ensure_triggers().values()
    }
