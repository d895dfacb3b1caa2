"""Public pages: the status page, incident pages, history, Atom feed, PWA files."""
from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, request, send_from_directory, url_for
from sqlalchemy import func, select

from ..extensions import db
from ..incidents import get_incident, recently_resolved
from ..models import Incident
from ..summary import build_summary
from ..timeutil import iso
from ..uptime import build_uptime
from ..validation import ascii_int

bp = Blueprint("public", __name__)

HISTORY_PAGE_SIZE = 20


def push_context(components) -> dict:
    from ..push.settings import push_available

    return {
        "push_enabled": push_available(),
        "push_components": [
            {"id": c.id, "name": c.name, "group": c.group.name if c.group else None} for c in components
        ],
    }


@bp.get("/")
def index():
    s = build_summary()
    return render_template("index.html", s=s, recent=recently_resolved(5), uptime=build_uptime(),
                           **push_context(s.components))


@bp.get("/incidents/<int:incident_id>")
def incident(incident_id: int):
    item = get_incident(incident_id, kind=None)
    from ..components import list_components

    return render_template("incident.html", incident=item, **push_context(list_components()))


@bp.get("/history")
def history():
    page = ascii_int(request.args.get("page", "1"))
    page = page if page is not None and 0 < page < 100000 else 1
    total = db.session.execute(select(func.count(Incident.id))).scalar_one()
    items = db.session.execute(
        select(Incident).order_by(func.coalesce(Incident.scheduled_for, Incident.created_at).desc(), Incident.id.desc())
        .limit(HISTORY_PAGE_SIZE).offset((page - 1) * HISTORY_PAGE_SIZE)
    ).scalars().all()
    pages = max(1, (total + HISTORY_PAGE_SIZE - 1) // HISTORY_PAGE_SIZE)
    if page > pages:
        abort(404)
    from ..components import list_components

    return render_template("history.html", items=items, page=page, pages=pages, **push_context(list_components()))


@bp.get("/feed.atom")
def feed():
    items = db.session.execute(
        select(Incident).order_by(Incident.updated_at.desc(), Incident.id.desc()).limit(50)
    ).scalars().all()
    site_url = current_app.config["SITE_URL"]
    updated = max((i.updated_at for i in items), default=None)
    body = render_template("feed.xml", items=items, site_url=site_url, updated=iso(updated) or "1970-01-01T00:00:00Z",
                           iso=iso, content_html=_entry_html)
    return Response(body, mimetype="application/atom+xml")


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


@bp.get("/sw-push.js")
def service_worker():
    # Served from the root so its scope can be "/"; no-cache so a new version is picked up at once.
    response = send_from_directory(current_app.static_folder, "sw-push.js", mimetype="text/javascript",
                                   max_age=0)
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    path = Path(current_app.static_folder) / "manifest.json"
    data = json.loads(path.read_text())
    name = current_app.config["SITE_NAME"]
    data["name"] = name
    data["short_name"] = name[:12]
    response = current_app.response_class(json.dumps(data, indent=2), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/favicon.ico")
def favicon():
    return current_app.redirect(url_for("static", filename="icons/favicon-32.png"), 301)
