"""Statuspage-compatible public JSON API under /api/v2 (same field names and enums).

Each document is a registered public path (statuspage/publish/registry.py): published as a file
(``api/v2/summary.json``...), served with ``Access-Control-Allow-Origin: *`` so widgets on other
sites can read it.
"""
from __future__ import annotations

from flask import Blueprint

from ..incidents import list_incidents
from ..publish.registry import Topic, public_page
from ..publish.render import ContentType, RenderContext, Rendered
from ..serializers import component_dict, group_dict, incident_dict, page_dict
from ..summary import Summary

bp = Blueprint("statusapi", __name__, url_prefix="/api/v2")

# The page's updated_at is the newest component or open incident: every document depends on both.
SUMMARY = {Topic.COMPONENT_STATUS, Topic.COMPONENTS, Topic.INCIDENTS}


def _components(s: Summary) -> list[dict]:
    items = [component_dict(c) for c in s.components] + [group_dict(g) for g in s.groups]
    return sorted(items, key=lambda d: (d["position"], str(d["id"])))


def _status(s: Summary) -> dict:
    return {"indicator": s.indicator, "description": s.description}


def _document(rule: str, endpoint: str):
    return public_page(bp, rule, topics=SUMMARY, content_type=ContentType.JSON, cors=True, endpoint=endpoint)


@_document("/summary.json", "summary")
def summary(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    return ctx.json({
        "page": page_dict(s.updated_at),
        "components": _components(s),
        "incidents": [incident_dict(i) for i in s.incidents],
        "scheduled_maintenances": [incident_dict(m) for m in s.active_maintenance + s.upcoming],
        "status": _status(s),
    })


@_document("/status.json", "status")
def status(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    return ctx.json({"page": page_dict(s.updated_at), "status": _status(s)})


@_document("/components.json", "components")
def components(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    return ctx.json({"page": page_dict(s.updated_at), "components": _components(s)})


@_document("/incidents.json", "incidents")
def incidents(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    return ctx.json({"page": page_dict(s.updated_at),
                     "incidents": [incident_dict(i) for i in list_incidents(limit=50)]})


@_document("/incidents/unresolved.json", "incidents_unresolved")
def incidents_unresolved(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    return ctx.json({"page": page_dict(s.updated_at), "incidents": [incident_dict(i) for i in s.incidents]})


@_document("/scheduled-maintenances.json", "maintenances")
def maintenances(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    items = list_incidents(kind="maintenance", limit=50)
    return ctx.json({"page": page_dict(s.updated_at), "scheduled_maintenances": [incident_dict(m) for m in items]})


@_document("/scheduled-maintenances/upcoming.json", "maintenances_upcoming")
def maintenances_upcoming(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    return ctx.json({"page": page_dict(s.updated_at),
                     "scheduled_maintenances": [incident_dict(m) for m in s.upcoming]})


@_document("/scheduled-maintenances/active.json", "maintenances_active")
def maintenances_active(ctx: RenderContext) -> Rendered:
    s = ctx.summary
    return ctx.json({"page": page_dict(s.updated_at),
                     "scheduled_maintenances": [incident_dict(m) for m in s.active_maintenance]})
