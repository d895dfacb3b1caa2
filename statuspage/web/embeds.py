"""Public extras of this page beyond Statuspage's API: the uptime JSON, SVG status badges and
the embeddable widget (`/embed.js`). Like every public view, each is a pure function of the
database (and the clock, for the uptime days), so the published snapshot can render them.

`published_paths()` lists the public paths this module adds, for the snapshot publisher to
register (with `/`, whose uptime bars come from the same data); `uptime.next_day_boundary()`
says when the bars change without a database change (local midnight).
"""
from __future__ import annotations

from flask import Blueprint, jsonify

from ..components import list_components, list_groups, worst_status
from ..serializers import uptime_dict
from ..summary import page_updated_at
from ..uptime import STATUS_LABELS, build_uptime, day_summary, uptime_text

bp = Blueprint("embeds", __name__)


@bp.app_context_processor
def uptime_template_helpers() -> dict:
    return {"day_summary": day_summary, "uptime_text": uptime_text, "status_labels": STATUS_LABELS,
            "worst_status": worst_status}


def published_paths() -> list[str]:
    """Every public path this module serves, for the snapshot publisher."""
    return ["/api/v2/uptime.json"]


@bp.get("/api/v2/uptime.json")
def uptime_json():
    uptime = build_uptime()
    return jsonify(uptime_dict(uptime, page_updated_at(list_components(), list_groups())))
