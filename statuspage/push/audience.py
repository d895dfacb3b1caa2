"""The composer's audience preview: how many current subscribers the message being written would
reach, decided by the same rules fan-out applies (notify, push on, trigger on and its conditions,
VAPID keys, then the subscribers' own component choices), without recording anything."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from .. import validation as v
from ..errors import ValidationError
from ..extensions import db
from ..models import EVENT_TYPES, INCIDENT_IMPACTS, Event
from .delivery import matching_ids, policy_reason
from .keys import KeysUnavailable, current_keys

MAX_COMPONENTS = 500


def audience(event_type: str, *, component_ids: list[int], impact: str | None = None,
             notify: bool = True) -> dict[str, Any]:
    """{"event", "count", "reason"}: count is 0 with the reason when nothing would be sent."""
    # Transient: never added to the session, so nothing is recorded.
    event = Event(type=event_type, notify=notify, context={"component_ids": component_ids, "impact": impact})
    reason = policy_reason(event)
    if reason is None:
        try:
            if current_keys() is None:
                reason = "no VAPID keys configured"
        except KeysUnavailable as exc:
            reason = str(exc)[:200]
    count = 0
    if reason is None:
        count = db.session.execute(select(func.count()).select_from(matching_ids(event).subquery())).scalar_one()
    return {"event": event_type, "count": count, "reason": reason}


def audience_from_query(args: MultiDict) -> dict[str, Any]:
    """The query string of `GET /admin/push/audience` and `GET /api/v1/push/audience`:
    event, impact, notify (1/0, true/false) and component_ids (repeated, or comma-separated)."""
    event_type = args.get("event", "")
    if event_type not in EVENT_TYPES:
        raise ValidationError(f"event must be one of: {', '.join(EVENT_TYPES)}", field="event")
    impact = args.get("impact") or None
    if impact is not None and impact not in INCIDENT_IMPACTS:
        raise ValidationError(f"impact must be one of: {', '.join(INCIDENT_IMPACTS)}", field="impact")
    raw = [part for value in args.getlist("component_ids") for part in value.split(",") if part.strip()]
    if len(raw) > MAX_COMPONENTS:
        raise ValidationError(f"component_ids may name at most {MAX_COMPONENTS} components", field="component_ids")
    ids = sorted({v.parse_id(part.strip(), "component_ids") for part in raw})
    notify = args.get("notify", "1").lower() not in ("0", "false", "no", "off")
    return audience(event_type, component_ids=ids, impact=impact, notify=notify)
