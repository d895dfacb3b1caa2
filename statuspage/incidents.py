"""Incidents, their updates, and scheduled maintenances (incidents of kind 'maintenance').

Every function here changes state and records the matching outbox event in the same session;
callers commit with `events.commit()`.

One transition, one event: a status change is decided from the incident row re-read under a write
lock (`database.locked`: SELECT ... FOR UPDATE on PostgreSQL, the write lock on SQLite) that is
held until the commit, so whoever races it -- two admins, the sweeper and a PATCH, two workers --
the second sees the first's result and records no second "resolved" or "started".
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, or_, select, update

from . import validation as v
from .components import get_component, set_component_status
from .database import locked
from .errors import ConflictError, NotFoundError, ValidationError
from .events import record_event
from .extensions import db
from .jobs import JobName
from .models import (
    ACTIVE_MAINTENANCE_STATUSES,
    COMPONENT_STATUSES,
    INCIDENT_IMPACTS,
    INCIDENT_STATUSES,
    MAINTENANCE_STATUSES,
    RESOLVED_INCIDENT_STATUSES,
    Component,
    Event,
    EventState,
    Incident,
    IncidentUpdate,
    StatusSource,
)
from .reminders import schedule_reminders
from .timeutil import utcnow

INCIDENT_FIELDS = ("name", "status", "impact", "body", "components", "component_ids", "notify",
                   "restore_components")
UPDATE_FIELDS = ("status", "body", "components", "component_ids", "notify", "impact", "restore_components")
MAINTENANCE_FIELDS = (
    "name", "status", "body", "scheduled_for", "scheduled_until", "components", "component_ids",
    "auto_transition", "auto_transition_to_maintenance_state", "notify", "allow_past",
)
# A start typed as "now" in a minute-resolution form is up to a minute old when it arrives.
PAST_GRACE = timedelta(minutes=5)
POSTMORTEM_FIELDS = ("body", "notify")
EDIT_UPDATE_FIELDS = ("body", "notify")
MAX_BODY = 20000
MAX_POSTMORTEM = 60000
POSTMORTEM_HOW = "publish one (the admin's Postmortem form, or PUT /api/v1/incidents/<id>/postmortem)"


def incident_url(incident: Incident) -> str:
    return f"{current_app.config['SITE_URL']}/incidents/{incident.id}"


def get_incident(incident_id: int, *, kind: str | None = "incident") -> Incident:
    incident = db.session.get(Incident, incident_id)
    if incident is None or (kind and incident.kind != kind):
        what = "maintenance" if kind == "maintenance" else "incident"
        raise NotFoundError(f"{what} {incident_id} not found")
    return incident


def _component_changes(data: dict) -> dict[int, str | None]:
    """Parse `components` ({id: status}) and/or `component_ids` ([id]) into {component: status|None}."""
    changes: dict[int, str | None] = {}
    for cid in v.id_list(data, "component_ids") or []:
        changes[cid] = None
    raw = data.get("components")
    if raw is not None:
        if not isinstance(raw, dict):
            raise ValidationError(
                'components must be an object mapping component id to status, e.g. {"3": "major_outage"}',
                field="components",
            )
        if len(raw) > 500:
            raise ValidationError("components may name at most 500 components", field="components")
        for key, status in raw.items():
            try:
                cid = v.parse_id(key, "components")
            except ValidationError:
                raise ValidationError(f"components: {str(key)[:40]!r} is not a component id",
                                      field="components") from None
            if status not in COMPONENT_STATUSES:
                raise ValidationError(
                    f"components[{key}] must be one of: {', '.join(COMPONENT_STATUSES)}", field="components"
                )
            changes[cid] = status
    for cid in changes:
        if db.session.get(Component, cid) is None:
            raise ValidationError(f"component {cid} does not exist", field="components")
    return changes


def _apply_component_changes(incident: Incident, changes: dict[int, str | None], notify: bool) -> dict[int, str]:
    """Attach the named components and set the given statuses; returns every incident
    component's status from before the change (for the update's affected_components)."""
    for cid in changes:
        component = get_component(cid)
        if component not in incident.components:
            incident.components.append(component)
    before = {c.id: c.status for c in incident.components}
    for cid, status in changes.items():
        if status is not None:
            set_component_status(get_component(cid), status, incident_id=incident.id, notify=notify)
    return before


def _affected(incident: Incident, before: dict[int, str]) -> list[dict[str, Any]] | None:
    """Statuspage repeats every component of the incident on every update, old == new when the
    update left it alone; null when the incident has no components."""
    components = sorted(incident.components, key=lambda c: (c.position, c.id))
    return [{"code": c.id, "name": c.name, "old_status": before.get(c.id, c.status), "new_status": c.status}
            for c in components] or None


def _body(data: dict, *, required: bool = False) -> str:
    return v.string(data, "body", required=required, max_length=MAX_BODY, allow_empty=True, default="") or ""


def _event_context(incident: Incident, update: IncidentUpdate | None) -> dict[str, Any]:
    return {
        "incident_name": incident.name,
        "status": incident.status,
        "impact": incident.impact,
        "update_body": update.body if update else "",
        "component_ids": [c.id for c in incident.components],
        "component_name": ", ".join(c.name for c in incident.components),
        "url": incident_url(incident),
    }


def create_incident(data: dict[str, Any]) -> Incident:
    v.require_object(data, INCIDENT_FIELDS, what="incident")
    name = v.string(data, "name", required=True, max_length=300)
    status = v.choice(data, "status", INCIDENT_STATUSES, default="investigating")
    if status == "postmortem":
        raise ValidationError(f"a new incident cannot start as postmortem: create it resolved, then {POSTMORTEM_HOW}",
                              field="status")
    impact = v.choice(data, "impact", INCIDENT_IMPACTS, default="minor")
    body = _body(data)
    notify = v.boolean(data, "notify", default=True)
    restore = v.boolean(data, "restore_components", default=True)
    changes = _component_changes(data)
    now = utcnow()
    incident = Incident(kind="incident", name=name, status=status, impact=impact, created_at=now, updated_at=now,
                        notify=notify)
    _stamp_status(incident, status, now)
    db.session.add(incident)
    db.session.flush()
    if incident.is_resolved and restore:
        # Recorded already resolved (an outage written up after the fact). A status the request
        # names is what the admin says the component is now: kept, even an outage. A component
        # named without a status (component_ids) is restored as resolving would restore it, with
        # the same exceptions (under maintenance, still in another open incident). Nothing named:
        # nothing to restore.
        for cid in changes:
            if get_component(cid) not in incident.components:
                incident.components.append(get_component(cid))
        changes = {**changes, **_restored_components(incident, changes)}
    before = _apply_component_changes(incident, changes, notify)
    update = IncidentUpdate(incident=incident, status=status, body=body, created_at=now,
                            affected_components=_affected(incident, before), deliver_notifications=notify)
    db.session.add(update)
    db.session.flush()
    record_event("incident.created", incident_id=incident.id, notify=notify,
                 context=_event_context(incident, update))
    if incident.is_resolved:
        record_event("incident.resolved", incident_id=incident.id, notify=notify,
                     context=_event_context(incident, update))
    return incident


def _stamp_status(incident: Incident, status: str, now: datetime) -> None:
    if status == "monitoring" and incident.monitoring_at is None:
        incident.monitoring_at = now
    if status in RESOLVED_INCIDENT_STATUSES and incident.resolved_at is None:
        incident.resolved_at = now
    if status in ACTIVE_MAINTENANCE_STATUSES and incident.started_at is None:
        incident.started_at = now
    if status == "completed" and incident.resolved_at is None:
        incident.resolved_at = now


def post_update(incident: Incident, data: dict[str, Any]) -> IncidentUpdate:
    """Post a timeline update (incident or maintenance); records updated/resolved events."""
    v.require_object(data, UPDATE_FIELDS, what="update")
    incident = _lock(incident)
    statuses = MAINTENANCE_STATUSES if incident.kind == "maintenance" else INCIDENT_STATUSES
    status = v.choice(data, "status", statuses, default=incident.status)
    if status == "postmortem" and incident.status != "postmortem":
        raise ValidationError(f"status postmortem comes with a postmortem: {POSTMORTEM_HOW}", field="status")
    body = _body(data)
    notify = v.boolean(data, "notify", default=True)
    impact = v.choice(data, "impact", INCIDENT_IMPACTS) if incident.kind == "incident" else None
    restore = v.boolean(data, "restore_components", default=True)
    changes = _component_changes(data)
    if not body and status == incident.status and impact in (None, incident.impact) \
            and not _changes_anything(incident, changes):
        raise ValidationError("Write a message, or change the status, the impact or a component: "
                              "an update with none of these tells visitors nothing.", field="body")
    was_resolved = incident.is_resolved
    old_status = incident.status
    now = utcnow()
    incident.status = status
    if impact:
        incident.impact = impact
    incident.updated_at = now
    _stamp_status(incident, status, now)
    if incident.kind == "incident" and restore and incident.is_resolved and not was_resolved:
        changes = {**changes, **_restored_components(incident, changes)}
    before = _apply_component_changes(incident, changes, notify)
    if incident.kind == "maintenance":
        _maintenance_component_states(incident, old_status, status, notify)
    update = IncidentUpdate(incident=incident, status=status, body=body, created_at=now,
                            affected_components=_affected(incident, before), deliver_notifications=notify)
    db.session.add(update)
    db.session.flush()
    context = _event_context(incident, update)
    if incident.kind == "maintenance":
        if status in ACTIVE_MAINTENANCE_STATUSES and old_status == "scheduled":
            # In progress or straight to verifying: either way it has begun.
            record_event("maintenance.started", incident_id=incident.id, notify=notify, context=context)
        elif status == "completed" and old_status in ACTIVE_MAINTENANCE_STATUSES:
            # Completed before it ever started is a maintenance called off: no "completed" notice
            # for work that never happened (its reminders are dropped too, see reminders.py).
            record_event("maintenance.completed", incident_id=incident.id, notify=notify, context=context)
    elif incident.is_resolved and not was_resolved:
        record_event("incident.resolved", incident_id=incident.id, notify=notify, context=context)
    elif not incident.is_resolved or was_resolved:
        record_event("incident.updated", incident_id=incident.id, notify=notify, context=context)
    return update


def _changes_anything(incident: Incident, changes: dict[int, str | None]) -> bool:
    """Whether applying `changes` would attach a component or change one's status."""
    attached = {c.id for c in incident.components}
    return any(cid not in attached or (status is not None and get_component(cid).status != status)
               for cid, status in changes.items())


def _restored_components(incident: Incident, changes: dict[int, str | None]) -> dict[int, str | None]:
    """Resolving puts the incident's components back to operational (the request may name other
    statuses, or say restore_components false). Left alone: a component whose status the request
    names, one under maintenance (a maintenance window owns it), and one still attached to
    another unresolved incident (that outage is not over)."""
    still_open = _components_in_other_open_incidents(incident)
    return {c.id: "operational" for c in incident.components
            if changes.get(c.id) is None and c.status not in ("operational", "under_maintenance")
            and c.id not in still_open}


def _components_in_other_open_incidents(incident: Incident) -> set[int]:
    others = db.session.execute(
        select(Incident).where(Incident.kind == "incident", Incident.id != incident.id,
                               Incident.status.not_in(RESOLVED_INCIDENT_STATUSES))
    ).scalars()
    return {c.id for other in others for c in other.components}


def _lock(incident: Incident) -> Incident:
    """The incident re-read under a write lock held until commit (see the module docstring)."""
    row = locked(Incident, incident.id)
    if row is None:
        raise NotFoundError(f"{'maintenance' if incident.kind == 'maintenance' else 'incident'} {incident.id} "
                            "was deleted")
    return row


def list_incidents(*, kind: str = "incident", unresolved_only: bool = False, limit: int = 50,
                   offset: int = 0) -> list[Incident]:
    query = select(Incident).where(Incident.kind == kind)
    if unresolved_only:
        done = ("completed",) if kind == "maintenance" else RESOLVED_INCIDENT_STATUSES
        query = query.where(Incident.status.not_in(done))
    order = Incident.scheduled_for.desc() if kind == "maintenance" else Incident.created_at.desc()
    return list(db.session.execute(query.order_by(order, Incident.id.desc()).limit(limit).offset(offset)).scalars())


def recently_resolved(limit: int = 5) -> list[Incident]:
    """The latest resolved incidents (the status page lists them under the current state)."""
    return list(db.session.execute(
        select(Incident).where(Incident.kind == "incident", Incident.status.in_(RESOLVED_INCIDENT_STATUSES))
        .order_by(Incident.created_at.desc()).limit(limit)
    ).scalars())


def upcoming_maintenances() -> list[Incident]:
    return list(db.session.execute(
        select(Incident).where(Incident.kind == "maintenance", Incident.status == "scheduled")
        .order_by(Incident.scheduled_for, Incident.id)
    ).scalars())


def active_maintenances() -> list[Incident]:
    return list(db.session.execute(
        select(Incident).where(Incident.kind == "maintenance", Incident.status.in_(ACTIVE_MAINTENANCE_STATUSES))
        .order_by(Incident.scheduled_for, Incident.id)
    ).scalars())


# --- maintenances -------------------------------------------------------------------------

def create_maintenance(data: dict[str, Any]) -> Incident:
    v.require_object(data, MAINTENANCE_FIELDS, what="maintenance")
    name = v.string(data, "name", required=True, max_length=300)
    scheduled_for = v.timestamp(data, "scheduled_for", required=True)
    scheduled_until = v.timestamp(data, "scheduled_until", required=True)
    if scheduled_until <= scheduled_for:
        raise ValidationError("scheduled_until must be after scheduled_for", field="scheduled_until")
    status = v.choice(data, "status", MAINTENANCE_STATUSES, default="scheduled")
    notify = v.boolean(data, "notify", default=True)
    changes = _component_changes(data)
    now = utcnow()
    allow_past = v.boolean(data, "allow_past", default=False)
    if status == "scheduled":
        _refuse_past(scheduled_for, scheduled_until, now, allow_past)
    maintenance = Incident(
        kind="maintenance", name=name, status=status, impact="maintenance",
        scheduled_for=scheduled_for, scheduled_until=scheduled_until,
        auto_transition=v.boolean(data, "auto_transition", default=True),
        auto_transition_to_maintenance_state=v.boolean(data, "auto_transition_to_maintenance_state", default=True),
        created_at=now, updated_at=now, notify=notify,
    )
    _stamp_status(maintenance, status, now)
    db.session.add(maintenance)
    db.session.flush()
    for cid in changes:
        maintenance.components.append(get_component(cid))
    before = {c.id: c.status for c in maintenance.components}
    if status in ACTIVE_MAINTENANCE_STATUSES:  # created already in progress
        _maintenance_component_states(maintenance, "scheduled", status, notify)
    update = IncidentUpdate(incident=maintenance, status=status, body=_body(data), created_at=now,
                            affected_components=_affected(maintenance, before), deliver_notifications=notify)
    db.session.add(update)
    db.session.flush()
    context = _event_context(maintenance, update)
    context["scheduled_for"] = scheduled_for.isoformat()
    context["scheduled_until"] = scheduled_until.isoformat()
    record_event("maintenance.scheduled", incident_id=maintenance.id, notify=notify, context=context)
    if status in ACTIVE_MAINTENANCE_STATUSES:  # created already in progress: it starts now
        record_event("maintenance.started", incident_id=maintenance.id, notify=notify, context=context)
    schedule_transitions(maintenance)
    schedule_reminders(maintenance, new_schedule=True)
    if allow_past and maintenance.auto_transition and status == "scheduled" and scheduled_for <= now:
        # Confirmed as already begun: start it right after the commit, not at the sweeper's next round.
        db.session.info.setdefault("after_commit_jobs", []).append((JobName.RUN_DUE_MAINTENANCES, 0.0))
    return maintenance


def update_maintenance(maintenance: Incident, data: dict[str, Any]) -> Incident:
    """PATCH: reschedule/rename, or move status (which posts an update). `notify` here is the
    maintenance's own setting: it also decides whether its automatic start and end notify."""
    v.require_object(data, MAINTENANCE_FIELDS, what="maintenance")
    maintenance = _lock(maintenance)
    if "notify" in data:
        maintenance.notify = v.boolean(data, "notify", default=True)
    if "name" in data:
        maintenance.name = v.string(data, "name", required=True, max_length=300)
    if "auto_transition" in data:
        maintenance.auto_transition = v.boolean(data, "auto_transition", default=True)
    if "auto_transition_to_maintenance_state" in data:
        # Read when the maintenance starts and when it completes.
        maintenance.auto_transition_to_maintenance_state = v.boolean(
            data, "auto_transition_to_maintenance_state", default=True)
    start = v.timestamp(data, "scheduled_for") or maintenance.scheduled_for
    end = v.timestamp(data, "scheduled_until") or maintenance.scheduled_until
    if end <= start:
        raise ValidationError("scheduled_until must be after scheduled_for", field="scheduled_until")
    rescheduled = start != maintenance.scheduled_for
    allow_past = v.boolean(data, "allow_past", default=False)
    if maintenance.status == "scheduled" and data.get("status") in (None, "scheduled") and (
            start != maintenance.scheduled_for or end != maintenance.scheduled_until):
        _refuse_past(start, end, utcnow(), allow_past)
    maintenance.scheduled_for, maintenance.scheduled_until = start, end
    update_data = {k: data[k] for k in ("status", "body", "components", "component_ids", "notify") if k in data}
    if update_data.get("status") not in (None, maintenance.status) or update_data.get("body"):
        post_update(maintenance, update_data)
    elif "components" in data or "component_ids" in data:
        for cid in _component_changes(data):
            component = get_component(cid)
            if component not in maintenance.components:
                maintenance.components.append(component)
    maintenance.updated_at = utcnow()
    db.session.flush()
    schedule_transitions(maintenance)
    schedule_reminders(maintenance, new_schedule=rescheduled)
    return maintenance


def _refuse_past(start: datetime, end: datetime, now: datetime, allow_past: bool) -> None:
    """A maintenance scheduled in the past would start (or even complete) the moment it is saved,
    notifying subscribers: usually a typo in the date. It takes `allow_past: true` to mean it."""
    if allow_past:
        return
    if end <= now:
        raise ValidationError("The end is in the past, so this maintenance would be completed at once. Check "
                              "the dates, or confirm that you are recording a past maintenance "
                              "(allow_past).", field="scheduled_until")
    if start < now - PAST_GRACE:
        raise ValidationError("The start is in the past, so this maintenance would begin at once. Check the "
                              "date, or confirm that it has already started (allow_past).",
                              field="scheduled_for")


def start_maintenance(maintenance: Incident, *, automatic: bool = False) -> None:
    body = "Scheduled maintenance is now in progress." if automatic else ""
    post_update(maintenance, {"status": "in_progress", "body": body, "notify": maintenance.notify})


def complete_maintenance(maintenance: Incident, *, automatic: bool = False) -> None:
    body = "Scheduled maintenance has been completed." if automatic else ""
    post_update(maintenance, {"status": "completed", "body": body, "notify": maintenance.notify})


def _maintenance_component_states(maintenance: Incident, old_status: str, new_status: str, notify: bool) -> None:
    """However a maintenance moves (on time, by an admin's update or PATCH, created already in
    progress): starting puts its operational components under_maintenance, completing puts them
    back, unless the maintenance opted out (auto_transition_to_maintenance_state false). A
    component in a worse state is left alone (an outage stays visible), and one still covered by
    another maintenance in progress stays under maintenance."""
    if not maintenance.auto_transition_to_maintenance_state:
        return
    starting = new_status in ACTIVE_MAINTENANCE_STATUSES and old_status not in ACTIVE_MAINTENANCE_STATUSES \
        and old_status != "completed"
    if starting:
        for component in maintenance.components:
            if component.status == "operational":
                set_component_status(component, "under_maintenance", incident_id=maintenance.id, notify=notify,
                                     source=StatusSource.MAINTENANCE)
    elif new_status == "completed" and old_status != "completed":
        still_covered = _components_in_other_maintenance(maintenance)
        for component in maintenance.components:
            if component.status == "under_maintenance" and component.id not in still_covered:
                set_component_status(component, "operational", incident_id=maintenance.id, notify=notify,
                                     source=StatusSource.MAINTENANCE)


def _components_in_other_maintenance(maintenance: Incident) -> set[int]:
    others = db.session.execute(
        select(Incident).where(Incident.kind == "maintenance", Incident.id != maintenance.id,
                               Incident.status.in_(ACTIVE_MAINTENANCE_STATUSES),
                               Incident.auto_transition_to_maintenance_state.is_(True))
    ).scalars()
    return {c.id for other in others for c in other.components}


# --- corrections: edit an update's text, delete an incident --------------------------------

def get_update(incident: Incident, update_id: int) -> IncidentUpdate:
    update = db.session.get(IncidentUpdate, update_id)
    if update is None or update.incident_id != incident.id:
        raise NotFoundError(f"update {update_id} of {incident.kind} {incident.id} not found")
    return update


def edit_update(incident: Incident, update_id: int, data: dict[str, Any]) -> IncidentUpdate:
    """Correct an update's text. It is marked edited (edited_at); its status and component changes
    stay as posted. Subscribers are not notified again unless `notify` is true (incidents only:
    the notification is incident.updated with the corrected text)."""
    v.require_object(data, EDIT_UPDATE_FIELDS, what="update")
    incident = _lock(incident)
    update = get_update(incident, update_id)
    body = _body(data, required=True)
    if not body:
        raise ValidationError("Write the corrected message: an update's text can be changed but not emptied.",
                              field="body")
    notify = v.boolean(data, "notify", default=False)
    if notify and incident.kind != "incident":
        raise ValidationError("Only incident updates can notify again; maintenance has no such notification.",
                              field="notify")
    if body == update.body and not notify:
        return update  # nothing to correct: not marked edited
    update.body = body
    update.edited_at = utcnow()
    # The live page and summary.json notice changes by the incident's updated_at.
    incident.updated_at = update.edited_at
    db.session.flush()
    if notify:
        record_event("incident.updated", incident_id=incident.id, notify=True,
                     context=_event_context(incident, update))
    return update


def delete_incident(incident: Incident, *, restore_components: bool = True) -> dict[str, int]:
    """Delete an incident or maintenance with its updates. Deleting an unresolved incident puts its
    components back to operational as resolving it would (restore_components, default true; the
    same exceptions: under maintenance, or still in another open incident), quietly: a deleted
    incident was a mistake, and a notification would point at a page that no longer exists.
    Notifications already sent cannot be recalled: returns how many went out, for the admin's
    confirmation message."""
    incident = _lock(incident)
    sent = notified_count(incident)
    if incident.kind == "incident" and not incident.is_resolved and restore_components:
        for cid, status in _restored_components(incident, {}).items():
            set_component_status(get_component(cid), status, notify=False)
    elif incident.kind == "maintenance" and incident.status in ACTIVE_MAINTENANCE_STATUSES and restore_components:
        # A window deleted while open ends as completing it would: its components leave
        # under_maintenance (unless another open maintenance still covers them), quietly.
        _maintenance_component_states(incident, incident.status, "completed", notify=False)
    # Notifications not yet on their way (a component's debounce window) would point at a page
    # that no longer exists: they are dropped. Those already sending finish.
    db.session.execute(
        update(Event).where(Event.incident_id == incident.id,
                            Event.state.in_((EventState.PENDING, EventState.DISPATCHED)))
        .values(state=EventState.SKIPPED, state_reason="the incident was deleted", finished_at=utcnow())
        .execution_options(synchronize_session=False))
    db.session.delete(incident)
    db.session.flush()
    return sent


def notified_count(incident: Incident) -> dict[str, int]:
    """How many notifications about this incident were recorded and sent (for confirmations)."""
    events, sent = db.session.execute(
        select(func.count(Event.id), func.coalesce(func.sum(Event.sent_count), 0))
        .where(Event.incident_id == incident.id, Event.notify.is_(True))
    ).one()
    return {"events": int(events), "sent": int(sent)}


# --- postmortems --------------------------------------------------------------------------

def publish_postmortem(incident: Incident, data: dict[str, Any]) -> Incident:
    """Publish (or replace) a resolved incident's postmortem; the incident's status becomes
    "postmortem" as on Statuspage. `notify` (default false: a postmortem usually follows days
    later) sends the incident.updated notification."""
    v.require_object(data, POSTMORTEM_FIELDS, what="postmortem")
    if incident.kind != "incident":
        raise ValidationError("maintenances have no postmortem", field="body")
    body = v.string(data, "body", required=True, max_length=MAX_POSTMORTEM)
    notify = v.boolean(data, "notify", default=False)
    if not incident.is_resolved:
        raise ConflictError(f"incident {incident.id} is {incident.status}; only a resolved incident can carry "
                            "a postmortem", field="body")
    now = utcnow()
    incident.postmortem_body = body
    if incident.postmortem_published_at is None:
        incident.postmortem_published_at = now
    incident.status = "postmortem"
    incident.updated_at = now
    db.session.flush()
    context = _event_context(incident, None)
    context["update_body"] = body
    record_event("incident.updated", incident_id=incident.id, notify=notify, context=context)
    return incident


def remove_postmortem(incident: Incident) -> Incident:
    """Unpublish the postmortem: the incident is plain resolved again."""
    if incident.postmortem_published_at is None and incident.postmortem_body is None:
        raise NotFoundError(f"incident {incident.id} has no postmortem")
    incident.postmortem_body = None
    incident.postmortem_published_at = None
    if incident.status == "postmortem":
        incident.status = "resolved"
    incident.updated_at = utcnow()
    db.session.flush()
    return incident


def schedule_transitions(maintenance: Incident) -> None:
    """Run the due-maintenance check at start and end, after commit (the sweeper is the backstop)."""
    if not maintenance.auto_transition or maintenance.status == "completed":
        return
    now = utcnow()
    for when in (maintenance.scheduled_for, maintenance.scheduled_until):
        if when and when > now:
            db.session.info.setdefault("after_commit_jobs", []).append(
                (JobName.RUN_DUE_MAINTENANCES, (when - now).total_seconds() + 0.5)
            )


def _due(now: datetime):
    return and_(
        Incident.kind == "maintenance",
        Incident.auto_transition.is_(True),
        or_(
            (Incident.status == "scheduled") & (Incident.scheduled_for <= now),
            Incident.status.in_(ACTIVE_MAINTENANCE_STATUSES) & (Incident.scheduled_until <= now),
        ),
    )


def run_due_maintenances() -> int:
    """Start and complete maintenances whose time has come (job + sweeper). Idempotent per
    maintenance and state, however many of these run at once (one is queued per edit, the sweeper
    runs one, several workers take them): each maintenance is re-read under a write lock and
    moved only if it is still due, in a transaction of its own. Returns how many it moved."""
    from .events import commit, rollback

    now = utcnow()
    candidates = db.session.execute(select(Incident.id).where(_due(now)).order_by(Incident.id)).scalars().all()
    db.session.commit()
    moved = 0
    for maintenance_id in candidates:
        maintenance = locked(Incident, maintenance_id)
        if maintenance is None or not db.session.execute(
                select(Incident.id).where(Incident.id == maintenance_id, _due(now))).first():
            rollback()  # another worker (or an admin) got there first
            continue
        if maintenance.status == "scheduled":
            start_maintenance(maintenance, automatic=True)
        if maintenance.scheduled_until <= now and maintenance.status != "completed":
            complete_maintenance(maintenance, automatic=True)
        commit()
        moved += 1
    return moved
