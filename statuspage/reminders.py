"""Maintenance reminders: a `maintenance.reminder` event some minutes before a scheduled start.

The lead times are the push settings' `maintenance_reminder_minutes` (default [60]). Nothing is
queued ahead of time that would have to be taken back: a job at each reminder's due time (queued
when the maintenance is created or rescheduled) and the periodic sweeper both run
`send_due_reminders`, which decides from what is true now:

- only maintenances still ``scheduled`` whose start is still ahead get one;
- a reminder belongs to one schedule (start time and lead, `MaintenanceReminder`'s unique key):
  a rescheduled maintenance gets new reminders, the old schedule's never go out;
- a lead time already past when the maintenance is created or rescheduled is not sent (the row is
  written with no event): the reminder would arrive together with the announcement; nor is one
  already past when it is added to the settings (`lead_times_added`);
- when several lead times came due while nothing ran (no worker, no sweeper), only the closest
  one to the start goes out, once, late; the ones further out are never sent afterwards;
- an event recorded before a cancellation or reschedule is skipped at fan-out (`stale_reason`),
  so a reminder that waited for the queue never announces a start that is no longer planned.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .database import locked
from .events import commit, record_event, rollback
from .extensions import db
from .jobs import JobName
from .models import Event, EventState, Incident, MaintenanceReminder
from .push.settings import get_settings, reminder_minutes
from .timeutil import to_site, utcnow

log = logging.getLogger(__name__)


def schedule_reminders(maintenance: Incident, *, new_schedule: bool, leads: list[int] | None = None) -> None:
    """After commit, run `send_due_reminders` at each of the maintenance's reminder times (the
    sweeper is the backstop; a job for a schedule that changed since finds nothing to do).

    `new_schedule` (created, or its start moved; or `leads` were just added to the settings): the
    lead times already past are marked as such, so a maintenance scheduled 30 minutes ahead gets no
    "starts in 60 minutes" reminder the moment it is posted -- announcing it is the
    maintenance.scheduled trigger's job."""
    if maintenance.status != "scheduled" or maintenance.scheduled_for is None:
        return
    now = utcnow()
    if maintenance.scheduled_for <= now:
        return
    jobs = db.session.info.setdefault("after_commit_jobs", [])
    for lead in reminder_minutes(get_settings()) if leads is None else leads:
        due = maintenance.scheduled_for - timedelta(minutes=lead)
        if due > now:
            jobs.append((JobName.SEND_DUE_REMINDERS, (due - now).total_seconds() + 0.5))
        elif new_schedule and not _recorded(maintenance, lead):
            db.session.add(MaintenanceReminder(incident_id=maintenance.id, scheduled_for=maintenance.scheduled_for,
                                               lead_minutes=lead, event_id=None, created_at=now))


def lead_times_added(leads: list[int]) -> None:
    """The settings gained these lead times: for every maintenance still scheduled ahead, queue
    their reminders, and mark the ones whose time is already past as not sent -- raising the lead
    to 60 minutes while a maintenance starts in 30 must not send "starts in 30 minutes" at once, as
    if it were the 60-minute reminder come late. The caller commits."""
    if not leads:
        return
    maintenances = db.session.execute(
        select(Incident).where(Incident.kind == "maintenance", Incident.status == "scheduled",
                               Incident.scheduled_for > utcnow())
    ).scalars().all()
    for maintenance in maintenances:
        schedule_reminders(maintenance, new_schedule=True, leads=leads)


def _recorded(maintenance: Incident, lead: int) -> bool:
    return db.session.execute(
        select(MaintenanceReminder.id).where(MaintenanceReminder.incident_id == maintenance.id,
                                             MaintenanceReminder.scheduled_for == maintenance.scheduled_for,
                                             MaintenanceReminder.lead_minutes == lead)
    ).first() is not None


def due_lead(scheduled_for: datetime, leads: list[int], now: datetime) -> int | None:
    """The lead time whose reminder is due now: the smallest one already reached, if the start is
    still ahead."""
    if scheduled_for <= now:
        return None
    reached = [lead for lead in leads if scheduled_for - timedelta(minutes=lead) <= now]
    return min(reached) if reached else None


def send_due_reminders() -> int:
    """Record the reminders that are due (job + sweeper). Idempotent however many run at once:
    each maintenance is re-read under a write lock in a transaction of its own, and the reminder
    row's unique key refuses a second one for the same schedule and lead. Returns how many."""
    leads = reminder_minutes(get_settings())
    db.session.commit()
    if not leads:
        return 0
    now = utcnow()
    candidates = db.session.execute(
        select(Incident.id).where(Incident.kind == "maintenance", Incident.status == "scheduled",
                                  Incident.scheduled_for > now,
                                  Incident.scheduled_for <= now + timedelta(minutes=max(leads)))
        .order_by(Incident.scheduled_for, Incident.id)
    ).scalars().all()
    db.session.commit()
    recorded = 0
    for maintenance_id in candidates:
        try:
            recorded += _remind(maintenance_id, leads, now)
        except IntegrityError:
            rollback()  # another worker recorded it first
    if recorded:
        log.info("recorded %d maintenance reminder(s)", recorded)
    return recorded


def _remind(maintenance_id: int, leads: list[int], now: datetime) -> int:
    maintenance = locked(Incident, maintenance_id)
    lead = None
    if maintenance is not None and maintenance.status == "scheduled":
        lead = due_lead(maintenance.scheduled_for, leads, now)
    if lead is None:
        rollback()
        return 0
    already = db.session.execute(
        select(MaintenanceReminder.id).where(MaintenanceReminder.incident_id == maintenance.id,
                                             MaintenanceReminder.scheduled_for == maintenance.scheduled_for,
                                             MaintenanceReminder.lead_minutes <= lead).limit(1)
    ).first()
    if already is not None:  # this one, or one closer to the start, went out already
        rollback()
        return 0
    event = record_event("maintenance.reminder", incident_id=maintenance.id, notify=maintenance.notify,
                         context=reminder_context(maintenance, now))
    db.session.flush()
    db.session.add(MaintenanceReminder(incident_id=maintenance.id, scheduled_for=maintenance.scheduled_for,
                                       lead_minutes=lead, event_id=event.id, created_at=now))
    commit()
    return 1


def reminder_context(maintenance: Incident, now: datetime) -> dict[str, Any]:
    latest = maintenance.updates[0].body if maintenance.updates else ""
    local = to_site(maintenance.scheduled_for)
    return {
        "incident_name": maintenance.name,
        "status": maintenance.status,
        "impact": maintenance.impact,
        "update_body": latest,
        "component_ids": [c.id for c in maintenance.components],
        "component_name": ", ".join(c.name for c in maintenance.components),
        "url": f"{current_app.config['SITE_URL']}/incidents/{maintenance.id}",
        "scheduled_for": maintenance.scheduled_for.isoformat(),
        "starts_at": local.strftime("%a %d %b %H:%M ") + (local.tzname() or "") if local else "",
        "starts_in": duration_words(maintenance.scheduled_for - now),
    }


def duration_words(delta: timedelta) -> str:
    """"45 minutes", "1 hour", "2 hours 30 minutes", "1 day 2 hours" (rounded to the minute)."""
    minutes = max(1, round(delta.total_seconds() / 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, "day"), (hours, "hour")] + ([(mins, "minute")] if not days else [])
    words = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in parts if n]
    return " ".join(words[:2])


def stale_reason(event: Event) -> tuple[EventState, str] | None:
    """Fan-out's check for a reminder recorded earlier: is its maintenance still planned to start
    at the time the reminder announces?"""
    maintenance = db.session.get(Incident, event.incident_id, populate_existing=True) \
        if event.incident_id is not None else None
    if maintenance is None:
        return EventState.SKIPPED, "the maintenance was deleted"
    if maintenance.status != "scheduled":
        return EventState.SKIPPED, f"the maintenance is {maintenance.status.replace('_', ' ')} now"
    if maintenance.scheduled_for.isoformat() != (event.context or {}).get("scheduled_for"):
        return EventState.SKIPPED, "the maintenance was rescheduled; its new time gets reminders of its own"
    if maintenance.scheduled_for <= utcnow():
        return EventState.SKIPPED, "the maintenance was due to start before the reminder could go out"
    return None
