"""Public pages: the status page, incident pages, history, Atom feed, PWA files.

Each is a registered public path (statuspage/publish/registry.py): its render function below is
used both to write the published snapshot and, when a file is missing, to answer live.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, url_for
from sqlalchemy import and_, func, or_, select

from ..extensions import db
from ..incidents import get_incident, recently_resolved
from ..models import RESOLVED_INCIDENT_STATUSES, Incident, IncidentUpdate
from ..publish.assets import asset_manifest
from ..publish.registry import REGISTRY, ChangeSet, Topic, public_family, public_page
from ..publish.render import ContentType, RenderContext, Rendered
from ..publish.serve import REVALIDATE, serve_page
from ..timeutil import iso, to_site
from ..validation import ascii_int

bp = Blueprint("public", __name__)

HISTORY_PAGE_SIZE = 20
# Every HTML page carries the subscribe control, which lists the components.
PAGE_TOPICS = {Topic.COMPONENTS, Topic.SUBSCRIBE}


# The day bars move on at local midnight without any change in the database: re-rendered at
# least this often (unchanged bytes keep their validators).
UPTIME_REFRESH = timedelta(minutes=10)


@public_page(bp, "/", topics=PAGE_TOPICS | {Topic.COMPONENT_STATUS, Topic.INCIDENTS}, refresh_every=UPTIME_REFRESH)
def index(ctx: RenderContext) -> Rendered:
    return ctx.html("index.html", s=ctx.summary, recent=recently_resolved(5), uptime=ctx.uptime)


# --- incident pages ----------------------------------------------------------------------------

def _incident_members() -> list[dict[str, Any]]:
    return [{"incident_id": i} for i in db.session.execute(select(Incident.id).order_by(Incident.id)).scalars()]


def _incident_affected(changes: ChangeSet) -> tuple[list[dict], list[dict]]:
    """The changed incidents now; every page when the subscribe control changed (open incidents
    and maintenances now, the rest newest first, spread over later rounds)."""
    urgent = {i: None for i in sorted(changes.incident_ids)}
    deferred: list[int] = []
    if changes.touches(PAGE_TOPICS):
        for incident_id, status in db.session.execute(
                select(Incident.id, Incident.status).order_by(Incident.updated_at.desc(), Incident.id.desc())):
            if status not in (*RESOLVED_INCIDENT_STATUSES, "completed"):
                urgent.setdefault(incident_id, None)
            elif incident_id not in urgent:
                deferred.append(incident_id)
    return [{"incident_id": i} for i in urgent], [{"incident_id": i} for i in deferred]


@public_family(bp, "/incidents/<int:incident_id>", members=_incident_members, affected=_incident_affected)
def incident(ctx: RenderContext, incident_id: int) -> Rendered:
    return ctx.html("incident.html", incident=get_incident(incident_id, kind=None))


# --- history -----------------------------------------------------------------------------------

def _history_order():
    return func.coalesce(Incident.scheduled_for, Incident.created_at)


# Maintenance still 'scheduled' has not happened: / lists it under scheduled maintenance, and history
# would otherwise show it under a future month. It joins the history when it starts (or is called off).
_IN_HISTORY = Incident.status != "scheduled"


def _history_pages() -> int:
    total = db.session.execute(select(func.count(Incident.id)).where(_IN_HISTORY)).scalar_one()
    return max(1, (total + HISTORY_PAGE_SIZE - 1) // HISTORY_PAGE_SIZE)


def _history(ctx: RenderContext, page: int) -> Rendered:
    pages = _history_pages()
    if page > pages:
        abort(404)
    items = db.session.execute(
        select(Incident).where(_IN_HISTORY).order_by(_history_order().desc(), Incident.id.desc())
        .limit(HISTORY_PAGE_SIZE).offset((page - 1) * HISTORY_PAGE_SIZE)
    ).scalars().all()
    return ctx.html("history.html", months=history_months(items), page=page, pages=pages)


@dataclass
class HistoryEntry:
    item: Incident
    excerpt: IncidentUpdate | None
    started: datetime | None
    ended: datetime | None


def history_months(items: list[Incident]) -> list[tuple[str, list[HistoryEntry]]]:
    """The page's incidents under "November 2026" headings (months in the site's zone), newest first."""
    months: list[tuple[str, list[HistoryEntry]]] = []
    for item in items:
        started = item.scheduled_for if item.kind == "maintenance" else item.created_at
        if item.kind == "maintenance" and item.started_at:
            started = item.started_at
        local = to_site(item.scheduled_for or item.created_at)
        label = f"{local:%B %Y}" if local else ""
        if not months or months[-1][0] != label:
            months.append((label, []))
        months[-1][1].append(HistoryEntry(item, first_substantive_update(item), started,
                                          item.resolved_at if item.is_resolved else None))
    return months


def first_substantive_update(item: Incident) -> IncidentUpdate | None:
    """What the incident was about: its first update with text, not the closing "resolved" one
    (which says little), unless nothing else has text."""
    with_text = [u for u in reversed(item.updates) if (u.body or "").strip()]
    closing = (*RESOLVED_INCIDENT_STATUSES, "completed")
    return next((u for u in with_text if u.status not in closing), with_text[0] if with_text else None)


def _history_page_of(incident_id: int) -> int | None:
    item = db.session.get(Incident, incident_id)
    if item is None or item.status == "scheduled":
        return None
    key = item.scheduled_for or item.created_at
    before = db.session.execute(select(func.count(Incident.id)).where(_IN_HISTORY, or_(
        _history_order() > key, and_(_history_order() == key, Incident.id > item.id)))).scalar_one()
    return before // HISTORY_PAGE_SIZE + 1


def _history_members() -> list[dict[str, Any]]:
    return [{"page": p} for p in range(2, _history_pages() + 1)]


def _history_affected(changes: ChangeSet) -> tuple[list[dict], list[dict]]:
    """Older pages when incidents were added, removed or re-dated (every page shifts) or the
    subscribe control changed; otherwise only the pages that show a changed incident."""
    if changes.touches(PAGE_TOPICS | {Topic.INCIDENT_LIST}):
        return [], _history_members()
    pages = {_history_page_of(i) for i in changes.incident_ids}
    return [{"page": p} for p in sorted(p for p in pages if p and p > 1)], []


@public_page(bp, "/history", topics=PAGE_TOPICS | {Topic.INCIDENTS, Topic.INCIDENT_LIST})
def history(ctx: RenderContext) -> Rendered:
    return _history(ctx, 1)


@public_family(bp, "/history/<int:page>", members=_history_members, affected=_history_affected,
               endpoint="history_page")
def history_page(ctx: RenderContext, page: int) -> Rendered:
    if page < 2:
        abort(404)  # page 1 is /history
    return _history(ctx, page)


@bp.before_request
def history_query_pages():
    """``/history?page=N`` (the URLs of earlier releases) answers with ``/history/N``'s bytes."""
    if request.endpoint != "public.history" or "page" not in request.args:
        return None
    raw = request.args["page"]
    number = ascii_int(raw)
    number = number if number is not None and 0 < number < 100000 else 1
    if number == 1:
        return None
    return serve_page(REGISTRY.by_endpoint("public.history_page"), {"page": number})


# --- feed and PWA files ------------------------------------------------------------------------

@public_page(bp, "/feed.atom", topics={Topic.INCIDENTS}, content_type=ContentType.ATOM, cors=True)
def feed(ctx: RenderContext) -> Rendered:
    items = db.session.execute(
        select(Incident).order_by(Incident.updated_at.desc(), Incident.id.desc()).limit(50)
    ).scalars().all()
    site_url = current_app.config["SITE_URL"]
    updated = max((i.updated_at for i in items), default=None)
    body = render_template("feed.xml", items=items, site_url=site_url, updated=iso(updated) or "1970-01-01T00:00:00Z",
                           iso=iso, content_html=_entry_html)
    return ctx.text(body, ContentType.ATOM)


def _entry_html(item: Incident) -> str:
    """The entry's HTML as a plain str, so the XML template escapes it once more (type="html")."""
    from markupsafe import escape

    from ..markdown import render_markdown

    parts = []
    if item.postmortem_published_at and item.postmortem_body:
        parts.append(f"<h3>Postmortem</h3><p><small>{escape(iso(item.postmortem_published_at))}</small></p>"
                     f"{render_markdown(item.postmortem_body)}<hr>")
    for u in item.updates:
        parts.append(
            f"<p><small>{escape(iso(u.created_at))}</small><br><strong>{escape(u.status.capitalize())}</strong></p>"
            f"{render_markdown(u.body)}"
        )
    return str("".join(parts))


# Served from the root so its scope can be "/"; no-cache so a new version is picked up at once.
@public_page(bp, "/sw-push.js", topics=(), content_type=ContentType.JAVASCRIPT, cache_control=REVALIDATE,
             headers={"Service-Worker-Allowed": "/"}, endpoint="service_worker")
def service_worker(ctx: RenderContext) -> Rendered:
    # Its importScripts() URLs are content-hashed, so a change in an imported file is a change
    # in this file's bytes: browsers install the new worker at their next update check.
    return Rendered(asset_manifest().assets["sw-push.js"].body, ContentType.JAVASCRIPT)


@public_page(bp, "/manifest.webmanifest", topics=(), content_type=ContentType.MANIFEST, cache_control=REVALIDATE)
def manifest(ctx: RenderContext) -> Rendered:
    data = json.loads((Path(current_app.static_folder) / "manifest.json").read_text())
    name = current_app.config["SITE_NAME"]
    data["name"] = name
    data["short_name"] = name[:12]
    assets = asset_manifest()
    for icon in data.get("icons", []):
        if icon.get("src", "").startswith("/static/"):
            icon["src"] = assets.url(icon["src"][len("/static/"):])
    return ctx.text(json.dumps(data, indent=2), ContentType.MANIFEST)


@bp.get("/favicon.ico")
def favicon():
    return current_app.redirect(url_for("static", filename="icons/favicon-32.png"), 301)
