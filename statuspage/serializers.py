"""JSON shapes. The public v2 API mirrors Atlassian Statuspage's field names and enums (string
ids); the admin v1 API uses the same shapes with integer ids so scripts can pass them back."""
from __future__ import annotations

from typing import Any

from flask import current_app

from .components import worst_status
from .models import Component, ComponentGroup, Incident, IncidentUpdate
from .timeutil import iso

PAGE_ID = "status"


def _id(value: int, native: bool) -> int | str:
    return value if native else str(value)


def group_ref(group_id: int, native: bool) -> int | str:
    return group_id if native else f"group-{group_id}"


def page_dict(updated_at) -> dict[str, Any]:
    return {
        "id": PAGE_ID,
        "name": current_app.config["SITE_NAME"],
        "url": current_app.config["SITE_URL"],
        "time_zone": current_app.config["SITE_TIMEZONE"],
        "updated_at": iso(updated_at),
    }


def component_dict(c: Component, native: bool = False) -> dict[str, Any]:
    data = {
        "id": _id(c.id, native),
        "name": c.name,
        "status": c.status,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "position": c.position,
        "description": c.description,
        "showcase": c.showcase,
        "start_date": c.created_at.date().isoformat() if c.created_at else None,
        "group_id": group_ref(c.group_id, native) if c.group_id else None,
        "page_id": PAGE_ID,
        "group": False,
        "only_show_if_degraded": False,
    }
    if native:
        # Admin API: "manual" (an admin set it; integrations wait until it is handed back) or "monitoring".
        data["status_owner"] = c.status_owner
    return data


def group_dict(g: ComponentGroup, native: bool = False) -> dict[str, Any]:
    members = g.components
    worst = worst_status(c.status for c in members)
    return {
        "id": group_ref(g.id, native),
        "name": g.name,
        "status": worst,
        "created_at": iso(g.created_at),
        "updated_at": iso(g.updated_at),
        "position": g.position,
        "description": g.description,
        "showcase": False,
        "start_date": None,
        "group_id": None,
        "page_id": PAGE_ID,
        "group": True,
        "only_show_if_degraded": False,
        "components": [_id(c.id, native) for c in members],
    }


def update_dict(u: IncidentUpdate, native: bool = False) -> dict[str, Any]:
    affected = [
        {**a, "code": _id(a["code"], native) if isinstance(a.get("code"), int) else a.get("code")}
        for a in (u.affected_components or [])
    ]
    data = {
        "id": _id(u.id, native),
        "status": u.status,
        "body": u.body,
        "incident_id": _id(u.incident_id, native),
        "created_at": iso(u.created_at),
        "updated_at": iso(u.edited_at or u.created_at),
        "display_at": iso(u.created_at),
        "affected_components": affected or None,
        "deliver_notifications": u.deliver_notifications,
        "custom_tweet": None,
        "tweet_id": None,
    }
    if native:
        data["edited_at"] = iso(u.edited_at)
    return data


def incident_dict(i: Incident, native: bool = False) -> dict[str, Any]:
    data = {
        "id": _id(i.id, native),
        "name": i.name,
        "status": i.status,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "monitoring_at": iso(i.monitoring_at),
        "resolved_at": iso(i.resolved_at),
        "impact": i.impact,
        "shortlink": f"{current_app.config['SITE_URL']}/incidents/{i.id}",
        "started_at": iso(i.started_at or i.created_at),
        "page_id": PAGE_ID,
        "incident_updates": [update_dict(u, native) for u in i.updates],
        "components": [component_dict(c, native) for c in i.components],
        # Statuspage's incident reminders; this page sends none, and upstream writes null then.
        "reminder_intervals": None,
    }
    if i.kind == "maintenance":
        data["scheduled_for"] = iso(i.scheduled_for)
        data["scheduled_until"] = iso(i.scheduled_until)
        if native:
            data["auto_transition"] = i.auto_transition
            data["auto_transition_to_maintenance_state"] = i.auto_transition_to_maintenance_state
    elif native:
        # The public v2 JSON carries only the status "postmortem"; the text is on the incident's page.
        data["postmortem_body"] = i.postmortem_body
        data["postmortem_published_at"] = iso(i.postmortem_published_at)
    return data


def uptime_day_dict(day) -> dict[str, Any]:
    site_url = current_app.config["SITE_URL"]
    return {
        "date": day.date.isoformat(),
        "status": day.status,  # the worst status of the day, or no_data
        "seconds": {status: round(secs) for status, secs in sorted(day.seconds.items())},
        "downtime_seconds": round(day.downtime),
        "incidents": [{"id": str(i.id), "name": i.name, "kind": i.kind, "impact": i.impact,
                       "url": f"{site_url}/incidents/{i.id}"} for i in day.incidents],
    }


def uptime_row_dict(row) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": group_ref(row.id, False) if row.is_group else str(row.id),
        "name": row.name,
        "group": row.is_group,
        "uptime_percent": row.uptime_percent,
        "observed_seconds": round(row.observed),
        "downtime_seconds": round(row.downtime),
        "since": row.since.isoformat() if row.since else None,
        "days": [uptime_day_dict(d) for d in row.days],
    }
    if row.is_group:
        data["components"] = [str(m.id) for m in row.members]
    return data


def uptime_dict(uptime, updated_at) -> dict[str, Any]:
    """Our own /api/v2/uptime.json (not an upstream endpoint; components.json stays upstream's)."""
    from .uptime import DOWNTIME_WEIGHT

    return {
        "page": page_dict(updated_at),
        "window": {"days": len(uptime.dates), "first_day": uptime.dates[0].isoformat(),
                   "last_day": uptime.dates[-1].isoformat(), "start": iso(uptime.start), "end": iso(uptime.end),
                   "time_zone": current_app.config["SITE_TIMEZONE"]},
        "downtime_weights": DOWNTIME_WEIGHT,
        "components": [uptime_row_dict(r) for r in uptime.rows.values()],
        "groups": [uptime_row_dict(g) for g in uptime.groups.values()],
    }
