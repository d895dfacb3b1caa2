"""Public extras of this page beyond Statuspage's API: the uptime JSON, SVG status badges and
the embeddable widget (`/embed.js`). Like every public view, each is a pure function of the
database (and the clock, for the uptime days), so the published snapshot can render them.

Each is registered with the snapshot's registry (statuspage/publish/registry.py): published as a
file, re-rendered when statuses, components or incidents change, served with the same bytes by
the app. A badge with a visitor's `?label=` and an unknown id are answered live.
"""
from __future__ import annotations

import json
from functools import cache
from html import escape
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request
from markupsafe import Markup
from werkzeug.exceptions import NotFound

from ..badge import GREY, INDICATOR_COLORS, STATUS_COLORS, render_badge
from ..components import IMPACT_RANK, list_components, list_groups, worst_status
from ..extensions import db
from ..models import Component, ComponentGroup
from ..publish.registry import ChangeSet, Topic, public_family, public_page
from ..publish.render import ContentType, RenderContext, Rendered
from ..publish.serve import snapshot_cache_control
from ..serializers import uptime_dict
from ..summary import build_summary, page_updated_at
from ..timeutil import iso
from ..uptime import STATUS_LABELS, day_summary, uptime_text
from ..validation import MAX_ID, ascii_int
from .public import UPTIME_REFRESH

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


# Other sites embed these (<img> in a README behind GitHub's camo proxy, <script> on a customer's
# page), also under Cross-Origin-Embedder-Policy.
EMBEDDABLE = {"Cross-Origin-Resource-Policy": "cross-origin"}
# Badges and the widget show statuses, incident names and maintenances; the uptime JSON also
# the day bars, which move on at local midnight (public.UPTIME_REFRESH re-renders it).
STATUS_TOPICS = {Topic.COMPONENT_STATUS, Topic.COMPONENTS, Topic.INCIDENTS}


def _svg(body: str, status: int = 200) -> Response:
    """A badge answered live (a ?label= of the visitor's, or a 4xx that is still a badge); the
    published ones go through the snapshot (`page_badge`, `component_badge`)."""
    response = Response(body, status=status, mimetype="image/svg+xml")
    # An error (an id that does not exist yet, a bad label) is not kept by caches.
    response.headers["Cache-Control"] = snapshot_cache_control() if status < 400 else "no-cache"
    response.headers.update(EMBEDDABLE)
    return response


def _label() -> str | None:
    """The optional ?label= (what the badge's left half says); a 400 badge when it is unusable."""
    label = request.args.get("label")
    if label is None:
        return None
    label = label.strip()
    if not label or len(label) > MAX_LABEL or not label.isprintable():
        problem = f"label must be 1 to {MAX_LABEL} printable characters"
        abort(_svg(render_badge("badge", "bad label", GREY, title=f"Bad request: {problem}"), 400))
    return label


def _page_badge_svg(label: str | None) -> str:
    s = build_summary()
    title = f"{current_app.config['SITE_NAME']}: {s.description}"
    return render_badge(label or "status", s.description.lower(), INDICATOR_COLORS[s.indicator], title=title)


def _badge_target(ref: str) -> tuple[Component | ComponentGroup | None, bool]:
    is_group = ref.startswith("group-")
    ident = ascii_int(ref.removeprefix("group-"))
    if ident is None or not 0 < ident <= MAX_ID:
        return None, is_group
    return db.session.get(ComponentGroup if is_group else Component, ident), is_group


def _component_badge_svg(item: Component | ComponentGroup, is_group: bool, label: str | None) -> str:
    status = worst_status(c.status for c in item.components) if is_group else item.status
    return render_badge(label or item.name, STATUS_LABELS[status].lower(), STATUS_COLORS[status],
                        title=f"{item.name}: {STATUS_LABELS[status]}")


@bp.before_app_request
def badges_answered_live():
    """What the snapshot cannot answer, answered live: a badge with the visitor's ?label=, and an
    unknown component or group, which is a 404 that is still a badge (an <img> shows what is
    wrong). nginx sends the same requests here (deploy/nginx.conf)."""
    if request.endpoint == "embeds.page_badge" and "label" in request.args:
        return _svg(_page_badge_svg(_label()))
    if request.endpoint == "embeds.component_badge":
        ref = (request.view_args or {}).get("ref", "")
        item, is_group = _badge_target(ref)
        if item is None:
            what = "group" if is_group else "component"
            return _svg(render_badge("status", f"unknown {what}", GREY,
                                     title=f"Not found: this page has no {what} {ref[:40]!r}"), 404)
        if "label" in request.args:
            return _svg(_component_badge_svg(item, is_group, _label()))
    return None


@public_page(bp, "/badge.svg", topics=STATUS_TOPICS, content_type=ContentType.SVG, headers=EMBEDDABLE)
def page_badge(ctx: RenderContext) -> Rendered:
    """The page's top-level status, e.g. `status | all systems operational`."""
    return ctx.text(_page_badge_svg(None), ContentType.SVG)


def _badge_members() -> list[dict[str, str]]:
    return [{"ref": str(c.id)} for c in list_components()] + [{"ref": f"group-{g.id}"} for g in list_groups()]


def _badges_affected(changes: ChangeSet) -> tuple[list[dict], list[dict]]:
    return (_badge_members(), []) if changes.touches(STATUS_TOPICS) else ([], [])


@public_family(bp, "/badge/<string:ref>.svg", members=_badge_members, affected=_badges_affected,
               content_type=ContentType.SVG, headers=EMBEDDABLE)
def component_badge(ctx: RenderContext, ref: str) -> Rendered:
    """A component's (`/badge/3.svg`) or a group's (`/badge/group-2.svg`, the ids of the v2 JSON) status."""
    item, is_group = _badge_target(ref)
    if item is None:
        raise NotFound()  # gone: its file is removed
    return ctx.text(_component_badge_svg(item, is_group, None), ContentType.SVG)


@public_page(bp, "/api/v2/uptime.json", topics=STATUS_TOPICS, content_type=ContentType.JSON, cors=True,
             refresh_every=UPTIME_REFRESH)
def uptime_json(ctx: RenderContext) -> Rendered:
    return ctx.json(uptime_dict(ctx.uptime, page_updated_at(ctx.components, list_groups())))


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


@public_page(bp, "/embed.js", topics=STATUS_TOPICS, content_type=ContentType.JAVASCRIPT, cors=True,
             headers=EMBEDDABLE)
def embed_js(ctx: RenderContext) -> Rendered:
    """The widget with the current status inlined: other sites need one <script> tag and no
    request to any API (so no CORS needed; it is sent anyway, for <script crossorigin> tags), and
    the published snapshot stores it as a file."""
    return ctx.text(widget_source().replace(DATA_SLOT, script_json(widget_data()), 1), ContentType.JAVASCRIPT)
