"""Public extras of this page beyond Statuspage's API: the uptime JSON, SVG status badges and
the embeddable widget (`/embed.js`). Like every public view, each is a pure function of the
database (and the clock, for the uptime days), so the published snapshot can render them.

`published_paths()` lists the public paths this module adds, for the snapshot publisher to
register (with `/`, whose uptime bars come from the same data); `uptime.next_day_boundary()`
says when the bars change without a database change (local midnight).
"""
from __future__ import annotations

import json
from functools import cache
from html import escape
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request
from markupsafe import Markup

from ..badge import GREY, INDICATOR_COLORS, STATUS_COLORS, render_badge
from ..components import IMPACT_RANK, list_components, list_groups, worst_status
from ..extensions import db
from ..models import Component, ComponentGroup
from ..serializers import uptime_dict
from ..summary import build_summary, page_updated_at
from ..timeutil import iso
from ..uptime import STATUS_LABELS, build_uptime, day_summary, uptime_text
from ..validation import MAX_ID, ascii_int

# Public, identical for every visitor, fine for caches and for other sites to load (an <img> in a
# README behind GitHub's camo proxy, a <script> on a customer's page): a short max-age keeps a
# badge at most a minute behind.
PUBLIC_CACHE = "public, max-age=60"
MAX_LABEL = 40

bp = Blueprint("embeds", __name__)


def uptime_bar_buttons(row, uid: str) -> Markup:
    """A row's 90 bars (the <li>s of its list). Built here rather than in a Jinja loop: at 3,000+
    bars on a page of 30 rows the loop was most of the page's render time (bench/uptime.py)."""
    bars = []
    for n, day in enumerate(row.days):
        detail = f' data-detail="{uid}-d{n}"' if day.incidents else ""
        bars.append(f'<li><button class="bar-{day.status}" aria-label="{escape(day_summary(day))}"{detail}>'
                    "</button></li>")
    return Markup("".join(bars))


@bp.app_context_processor
def uptime_template_helpers() -> dict:
    return {"day_summary": day_summary, "uptime_text": uptime_text, "status_labels": STATUS_LABELS,
            "worst_status": worst_status, "uptime_bar_buttons": uptime_bar_buttons}


def published_paths() -> list[str]:
    """Every public path this module serves, for the snapshot publisher: re-render them after
    any change to components, groups, incidents or maintenances (and the uptime JSON, like `/`,
    at `uptime.next_day_boundary()`). Badges with a `?label=` are rendered on request only."""
    paths = ["/api/v2/uptime.json", "/badge.svg", "/embed.js"]
    paths += [f"/badge/{c.id}.svg" for c in list_components()]
    paths += [f"/badge/group-{g.id}.svg" for g in list_groups()]
    return paths


def public_response(body: str, mimetype: str, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype=mimetype)
    # An error (an id that does not exist yet, a bad label) is not kept by caches.
    response.headers["Cache-Control"] = PUBLIC_CACHE if status < 400 else "no-cache"
    # Other sites embed these (<img>, <script>), also under Cross-Origin-Embedder-Policy.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


def _svg(body: str, status: int = 200) -> Response:
    return public_response(body, "image/svg+xml", status)


def _label(default: str) -> str | Response:
    """The optional ?label= (what the badge's left half says), or a 400 badge saying what is wrong."""
    label = request.args.get("label")
    if label is None:
        return default
    label = label.strip()
    if not label or len(label) > MAX_LABEL or not label.isprintable():
        problem = f"label must be 1 to {MAX_LABEL} printable characters"
        return _svg(render_badge("badge", "bad label", GREY, title=f"Bad request: {problem}"), 400)
    return label


@bp.get("/badge.svg")
def page_badge():
    """The page's top-level status, e.g. `status | all systems operational`."""
    label = _label("status")
    if isinstance(label, Response):
        return label
    s = build_summary()
    title = f"{current_app.config['SITE_NAME']}: {s.description}"
    return _svg(render_badge(label, s.description.lower(), INDICATOR_COLORS[s.indicator], title=title))


@bp.get("/badge/<string:ref>.svg")
def component_badge(ref: str):
    """A component's (`/badge/3.svg`) or a group's (`/badge/group-2.svg`, the ids of the v2 JSON)
    status; an unknown id is a 404 that is still a badge, so an <img> shows what is wrong."""
    item, is_group = None, ref.startswith("group-")
    number = ref.removeprefix("group-")
    ident = ascii_int(number)
    if ident is not None and 0 < ident <= MAX_ID:
        item = db.session.get(ComponentGroup if is_group else Component, ident)
    if item is None:
        what = "group" if is_group else "component"
        return _svg(render_badge("status", f"unknown {what}", GREY,
                                 title=f"Not found: this page has no {what} {ref[:40]!r}"), 404)
    label = _label(item.name)
    if isinstance(label, Response):
        return label
    status = worst_status(c.status for c in item.components) if is_group else item.status
    text = STATUS_LABELS[status].lower()
    return _svg(render_badge(label, text, STATUS_COLORS[status], title=f"{item.name}: {STATUS_LABELS[status]}"))


@bp.get("/api/v2/uptime.json")
def uptime_json():
    uptime = build_uptime()
    return jsonify(uptime_dict(uptime, page_updated_at(list_components(), list_groups())))


# --- the embeddable widget -------------------------------------------------------------------

WIDGET_SOURCE = Path(__file__).with_name("embed_widget.js")
DATA_SLOT = "/*STATUS_DATA*/null"
# A maintenance's banner colour, like its top-level status.
MAINTENANCE_LEVEL = "maintenance"
IMPACT_LEVEL = {"none": "minor", "minor": "minor", "major": "major", "critical": "critical"}


@cache
def widget_source() -> str:
    source = WIDGET_SOURCE.read_text(encoding="utf-8")
    if source.count(DATA_SLOT) != 1:
        raise RuntimeError(f"{WIDGET_SOURCE} must contain {DATA_SLOT} exactly once")
    return source


def widget_data() -> dict:
    """What the widget shows: the top-level status, the open incidents (worst impact, then
    newest, first) and the maintenances in progress, with absolute links to this page."""
    s = build_summary()
    site_url = current_app.config["SITE_URL"]
    incidents = sorted(s.incidents, key=lambda i: (IMPACT_RANK.get(i.impact, 0), i.updated_at), reverse=True)
    return {
        "page": {"name": current_app.config["SITE_NAME"], "url": f"{site_url}/"},
        "status": {"indicator": s.indicator, "description": s.description},
        "incidents": [{"kind": "incident", "name": i.name, "status": i.status.replace("_", " ").capitalize(),
                       "level": IMPACT_LEVEL.get(i.impact, "minor"), "url": f"{site_url}/incidents/{i.id}"}
                      for i in incidents],
        "maintenances": [{"kind": "maintenance", "name": m.name, "status": m.status.replace("_", " ").capitalize(),
                          "level": MAINTENANCE_LEVEL, "url": f"{site_url}/incidents/{m.id}"}
                         for m in s.active_maintenance],
        "updated_at": iso(s.updated_at),
    }


def script_json(data: dict) -> str:
    """JSON that is also safe inside any JavaScript context (no </script>, no U+2028/2029)."""
    text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@bp.get("/embed.js")
def embed_js():
    """The widget with the current status inlined: other sites need one <script> tag and no
    request to any API (so no CORS), and the published snapshot can store it as a file."""
    body = widget_source().replace(DATA_SLOT, script_json(widget_data()), 1)
    response = public_response(body, "text/javascript")
    # For <script crossorigin> tags (error details, strict setups); the body is public anyway.
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
