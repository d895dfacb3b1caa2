"""What admins see about deliveries: events with counts, alerts."""
from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from ..extensions import db
from ..models import AdminAlert, Event
from ..timeutil import iso, utcnow


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
    }


def event_dict(event: Event) -> dict[str, Any]:
    ctx = event.context or {}
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
