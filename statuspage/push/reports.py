"""What admins see about deliveries: events with counts (and seen/opened, push.seen), alerts."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ..extensions import db
from ..models import AdminAlert, Event
from ..timeutil import iso, utcnow
from .seen import shown_latencies


def recent_events(limit: int = 50, offset: int = 0) -> list[Event]:
    return list(db.session.execute(select(Event).order_by(Event.id.desc()).limit(limit).offset(offset)).scalars())


def event_counts(event: Event) -> dict[str, int]:
    final = event.sent_count + event.expired_count + event.failed_count
    return {
        "queued": max(0, event.queued_count - final),
        "sent": event.sent_count,
        "expired": event.expired_count,
        "failed": event.failed_count,
        "targeted": event.queued_count,
        "shown": event.shown_count,
        "opened": event.opened_count,
    }


def event_dicts(events: list[Event]) -> list[dict[str, Any]]:
    """event_dict for many events, with their latencies read in one query."""
    latencies = shown_latencies([e.id for e in events])
    return [event_dict(e, latencies[e.id]) for e in events]


def event_dict(event: Event, latency: dict[str, int | None] | None = None) -> dict[str, Any]:
    """An event with its delivery counts, open rate (opened / sent, None before anything was sent)
    and send-to-shown p50/p95 in seconds (upper histogram bounds, None until a shown report)."""
    ctx = event.context or {}
    if latency is None:
        latency = shown_latencies([event.id])[event.id]
    return {
        "id": event.id,
        "type": event.type,
        "incident_id": event.incident_id,
        "component_id": event.component_id,
        "subject": ctx.get("incident_name") or ctx.get("component_name") or "",
        "state": event.state,
        "state_reason": event.state_reason,
        "notify": event.notify,
        "created_at": iso(event.created_at),
        "dispatched_at": iso(event.dispatched_at),
        "finished_at": iso(event.finished_at),
        "counts": event_counts(event),
        "open_rate": round(event.opened_count / event.sent_count, 4) if event.sent_count else None,
        "shown_latency": latency,
    }


def open_alerts() -> list[AdminAlert]:
    return list(db.session.execute(
        select(AdminAlert).where(AdminAlert.acknowledged_at.is_(None)).order_by(AdminAlert.last_seen_at.desc())
    ).scalars())


def acknowledge_alerts() -> int:
    """Mark every open alert seen (a reason alerts again when it recurs after 10 minutes)."""
    return db.session.execute(
        update(AdminAlert).where(AdminAlert.acknowledged_at.is_(None)).values(acknowledged_at=utcnow())
    ).rowcount
