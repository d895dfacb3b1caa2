"""Statuspage-compatible public JSON API under /api/v2 (same field names and enums)."""
from __future__ import annotations

from flask import Blueprint, jsonify

from ..incidents import list_incidents
from ..serializers import component_dict, group_dict, incident_dict, page_dict
from ..summary import Summary, build_summary

bp = Blueprint("statusapi", __name__, url_prefix="/api/v2")


def _components(s: Summary) -> list[dict]:
    items = [component_dict(c) for c in s.components] + [group_dict(g) for g in s.groups]
    return sorted(items, key=lambda d: (d["position"], str(d["id"])))


def _status(s: Summary) -> dict:
    return {"indicator": s.indicator, "description": s.description}


@bp.get("/summary.json")
def summary():
    s = build_summary()
    return jsonify({
        "page": page_dict(s.updated_at),
        "components": _components(s),
        "incidents": [incident_dict(i) for i in s.incidents],
        "scheduled_maintenances": [incident_dict(m) for m in s.active_maintenance + s.upcoming],
        "status": _status(s),
    })


@bp.get("/status.json")
def status():
    s = build_summary()
    return jsonify({"page": page_dict(s.updated_at), "status": _status(s)})


@bp.get("/components.json")
def components():
    s = build_summary()
    return jsonify({"page": page_dict(s.updated_at), "components": _components(s)})


@bp.get("/incidents.json")
def incidents():
    s = build_summary()
    return jsonify({"page": page_dict(s.updated_at), "incidents": [incident_dict(i) for i in list_incidents(limit=50)]})


@bp.get("/incidents/unresolved.json")
def incidents_unresolved():
    s = build_summary()
    return jsonify({"page": page_dict(s.updated_at), "incidents": [incident_dict(i) for i in s.incidents]})


@bp.get("/scheduled-maintenances.json")
def maintenances():
    s = build_summary()
    items = list_incidents(kind="maintenance", limit=50)
    return jsonify({"page": page_dict(s.updated_at), "scheduled_maintenances": [incident_dict(m) for m in items]})


@bp.get("/scheduled-maintenances/upcoming.json")
def maintenances_upcoming():
    s = build_summary()
    return jsonify({"page": page_dict(s.updated_at),
                    "scheduled_maintenances": [incident_dict(m) for m in s.upcoming]})


@bp.get("/scheduled-maintenances/active.json")
def maintenances_active():
    s = build_summary()
    return jsonify({"page": page_dict(s.updated_at),
                    "scheduled_maintenances": [incident_dict(m) for m in s.active_maintenance]})
