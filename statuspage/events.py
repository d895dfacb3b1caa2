"""The event outbox: record an event with the change, dispatch it after commit.

`record_event` adds the row to the current session so it commits (or rolls back) together with
the change it describes. `commit()` commits and then hands each new event to the job queue; if
the queue is unreachable the row stays undispatched and the sweeper hands it over later.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from .extensions import db
from .jobs import EnqueueError, JobName, enqueue
from .models import EVENT_TYPES, Event, EventState
from .push.retry import retry_policy
from .timeutil import utcnow

log = logging.getLogger(__name__)


def record_event(event_type: str, *, incident_id: int | None = None, component_id: int | None = None,
                 context: dict[str, Any] | None = None, notify: bool = True,
                 delay_seconds: float = 0.0) -> Event:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type}")
    now = utcnow()
    event = Event(
        type=event_type,
        incident_id=incident_id,
        component_id=component_id,
        context=context or {},
        notify=notify,
        created_at=now,
        deliver_after=now + timedelta(seconds=delay_seconds),
        state=EventState.PENDING,
    )
    db.session.add(event)
    db.session.info.setdefault("outbox", []).append(event)
    return event


def commit() -> None:
    """Commit the session, then dispatch the events recorded in it."""
    outbox: list[Event] = db.session.info.pop("outbox", [])
    jobs: list[tuple[str, float]] = db.session.info.pop("after_commit_jobs", [])
    try:
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    for event in outbox:
        dispatch_event(event.id)
    for path, delay in jobs:
        try:
            enqueue(path, delay=delay)
        except EnqueueError as exc:
            log.warning("scheduled job %s not queued (%s); the sweeper covers it", path, exc)


def rollback() -> None:
    db.session.info.pop("outbox", None)
    db.session.info.pop("after_commit_jobs", None)
    db.session.rollback()


def dispatch_event(event_id: int) -> bool | None:
    """Hand the event's fan-out to the queue.

    True when handed over, None when there is nothing to do (already dispatched), False when
    the queue is unreachable (the row is left for the sweeper).
    """
    event = db.session.get(Event, event_id)
    if event is None or event.dispatched_at is not None:
        return None
    delay = max(0.0, (event.deliver_after - utcnow()).total_seconds())
    # Mark first and commit, so a job that starts at once never sees a half-dispatched row;
    # fan_out claims the event atomically, so a racing sweeper's second enqueue is harmless.
    db.session.execute(
        update(Event).where(Event.id == event_id, Event.dispatched_at.is_(None))
        .values(dispatched_at=utcnow(), state=EventState.DISPATCHED)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    try:
        enqueue(JobName.FAN_OUT, event_id, delay=delay, retry=retry_policy().job_retry)
    except EnqueueError as exc:
        log.warning("event %s not dispatched yet (%s); the sweeper will retry", event_id, exc)
        db.session.execute(
            update(Event).where(Event.id == event_id, Event.state == EventState.DISPATCHED)
            .values(dispatched_at=None, state=EventState.PENDING)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        return False
    return True


def dispatch_pending(older_than_seconds: float = 5.0, limit: int = 200) -> int:
    """Dispatch events committed but never handed to the queue (the sweeper calls this)."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = db.session.execute(
        select(Event.id)
        .where(Event.dispatched_at.is_(None), Event.created_at <= cutoff)
        .order_by(Event.id)
        .limit(limit)
    ).scalars().all()
    done = 0
    for event_id in ids:
        result = dispatch_event(event_id)
        if result is False:
            break  # queue still down: try again next sweep
        done += bool(result)
    if done:
        log.info("sweeper dispatched %d event(s)", done)
    return done

