"""Database models (SQLAlchemy 2 typed declarative).

Enums are stored as short strings (not native DB enums) so adding a value never needs a
type migration; the allowed values live in the tuples below and are checked by the services.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db
from .timeutil import utcnow

COMPONENT_STATUSES = (
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
)
DOWN_STATUSES = ("partial_outage", "major_outage")


class StatusSource(StrEnum):
    """Who sets a component's status. `Component.status_owner` is MANUAL (an admin set it by hand: it
    stays until handed back) or MONITORING (integrations may change it)."""

    MANUAL = "manual"
    MONITORING = "monitoring"
    MAINTENANCE = "maintenance"


INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved", "postmortem")
INCIDENT_IMPACTS = ("none", "minor", "major", "critical")
MAINTENANCE_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
ACTIVE_MAINTENANCE_STATUSES = ("in_progress", "verifying")  # the window is open
RESOLVED_INCIDENT_STATUSES = ("resolved", "postmortem")
ROLES = ("admin", "editor")


class SubscriptionStatus(StrEnum):
    ACTIVE = "active"  # receives pushes
    EXPIRED = "expired"  # the push service said it is gone, or the keys were rotated
    UNSUBSCRIBED = "unsubscribed"  # the visitor turned it off


SUBSCRIPTION_STATUSES = tuple(SubscriptionStatus)

EVENT_TYPES = (
    "incident.created",
    "incident.updated",
    "incident.resolved",
    "component.down",
    "component.recovered",
    "maintenance.scheduled",
    "maintenance.started",
    "maintenance.completed",
    "maintenance.reminder",
)


class EventState(StrEnum):
    """Where an event is on its way to subscribers (``Event.state``).

    pending -> dispatched (handed to the queue) -> fanning_out (fan_out claimed it) -> sending
    (batch jobs enqueued) -> done; or skipped (not sent: notify off, trigger off, no keys, ...) /
    superseded (a later change of the same component replaced it within the debounce window).
    """

    PENDING = "pending"
    DISPATCHED = "dispatched"
    FANNING_OUT = "fanning_out"
    SENDING = "sending"
    DONE = "done"
    SKIPPED = "skipped"
    SUPERSEDED = "superseded"


#: States in which batch jobs may still deliver the event.
DELIVERING_EVENT_STATES = (EventState.FANNING_OUT, EventState.SENDING)
#: States after which nothing more happens to the event.
FINAL_EVENT_STATES = (EventState.DONE, EventState.SKIPPED, EventState.SUPERSEDED)


class DeliveryState(StrEnum):
    """One event to one subscription (``Delivery.outcome``): claimed and in flight (sending),
    waiting for ``next_attempt_at`` (retry), or final (sent / expired / failed). The final values
    are those of ``push.sender.PushOutcome``."""

    SENDING = "sending"
    RETRY = "retry"
    SENT = "sent"
    EXPIRED = "expired"
    FAILED = "failed"


#: Deliveries that are not final yet.
OPEN_DELIVERY_STATES = (DeliveryState.SENDING, DeliveryState.RETRY)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A disabled user cannot sign in, and their sessions and tokens are refused until re-enabled.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")
    sessions: Mapped[list[UserSession]] = relationship(back_populates="user", cascade="all, delete-orphan",
                                                       passive_deletes=True)

    # Flask-Login protocol. The id Flask-Login keeps in the session and the remember-me cookie is
    # the sign-in's own key (see auth.py), never the bare user id: revoking the sign-in's row
    # ends both cookies at once.
    is_authenticated = True
    is_anonymous = False
    session_key: ClassVar[str | None] = None  # set per instance by auth.py

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None

    def get_id(self) -> str:
        if not self.session_key:
            raise RuntimeError("a user is signed in through auth.sign_in, which gives the session a key")
        return self.session_key

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100), default="")
    # sha256 of the token: tokens are high-entropy, so a fast hash is enough and lookups stay O(1).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


class UserSession(db.Model):
    """One sign-in to the admin UI (its session cookie and, if asked, its remember-me cookie).
    Signing out deletes the row, so a copied cookie stops working at once; a password change,
    disabling, deleting or `users sign-out-all` delete them all."""

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # sha256 of the random key inside the cookies (a database dump does not sign anyone in)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    browser: Mapped[str] = mapped_column(String(40), default="Other")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="sessions")


class AdminLog(db.Model):
    """The audit log of credential changes: who (a signed-in user or the server's command line)
    did what to which user. Emails are copied so an entry outlives the users it names."""

    __tablename__ = "admin_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(254))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    target: Mapped[str | None] = mapped_column(String(254))
    target_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    detail: Mapped[str | None] = mapped_column(String(300))


class ComponentGroup(db.Model):
    __tablename__ = "component_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    components: Mapped[list[Component]] = relationship(
        back_populates="group", order_by="Component.position, Component.id"
    )


class Component(db.Model):
    __tablename__ = "components"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("component_groups.id", ondelete="SET NULL"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(32), default="operational")
    showcase: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    # StatusSource.MONITORING or MANUAL (see components.hold_for_admin / integrations.service.hand_back).
    status_owner: Mapped[str] = mapped_column(String(16), default=StatusSource.MONITORING.value,
                                              server_default=StatusSource.MONITORING.value)

    group: Mapped[ComponentGroup | None] = relationship(back_populates="components")


class ComponentStatusChange(db.Model):
    """One row per component status change, written in the same transaction as the change (by
    `components.set_component_status`, and at creation): the source of the uptime history."""

    __tablename__ = "component_status_changes"
    __table_args__ = (Index("ix_component_status_changes_component_changed", "component_id", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


incident_components = Table(
    "incident_components",
    db.metadata,
    Column("incident_id", ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("component_id", ForeignKey("components.id", ondelete="CASCADE"), primary_key=True),
)


class Incident(db.Model):
    """An incident or, with kind='maintenance', a scheduled maintenance (as Statuspage models it)."""

    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_kind_status", "kind", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="incident")
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(32))
    impact: Mapped[str] = mapped_column(String(16), default="none")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    monitoring_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    scheduled_for: Mapped[datetime | None] = mapped_column(DateTime)
    scheduled_until: Mapped[datetime | None] = mapped_column(DateTime)
    auto_transition: Mapped[bool] = mapped_column(Boolean, default=True)
    # "Notify subscribers" as chosen at creation: the automatic transitions it implies (a
    # maintenance starting and completing on time) notify only if this is on.
    notify: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Maintenance only: while in progress, its operational components show under_maintenance
    # (Statuspage's own name for the switch); they return to operational when it completes.
    auto_transition_to_maintenance_state: Mapped[bool] = mapped_column(Boolean, default=True)
    # A resolved incident's postmortem (Markdown, rendered sanitized); publishing it sets the
    # status to "postmortem" as Statuspage does.
    postmortem_body: Mapped[str | None] = mapped_column(Text)
    postmortem_published_at: Mapped[datetime | None] = mapped_column(DateTime)

    components: Mapped[list[Component]] = relationship(
        secondary=incident_components, order_by="Component.position, Component.id"
    )
    updates: Mapped[list[IncidentUpdate]] = relationship(
        back_populates="incident",
        cascade="all, delete-orphan",
        order_by="desc(IncidentUpdate.created_at), desc(IncidentUpdate.id)",
    )

    @property
    def is_resolved(self) -> bool:
        if self.kind == "maintenance":
            return self.status == "completed"
        return self.status in RESOLVED_INCIDENT_STATUSES


class IncidentUpdate(db.Model):
    __tablename__ = "incident_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # [{"code": id, "name": ..., "old_status": ..., "new_status": ...}] as Statuspage reports them:
    # every component of the incident at the time, old == new when this update left it alone.
    affected_components: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # The update's `notify` (Statuspage's deliver_notifications).
    deliver_notifications: Mapped[bool] = mapped_column(Boolean, default=True)
    # When an admin last corrected the text after posting (shown as "edited"); null if never.
    edited_at: Mapped[datetime | None] = mapped_column(DateTime)

    incident: Mapped[Incident] = relationship(back_populates="updates")


class Event(db.Model):
    """The outbox: one row per notifiable change, written in the same transaction as the change."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_undispatched", "dispatched_at", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id", ondelete="SET NULL"))
    component_id: Mapped[int | None] = mapped_column(ForeignKey("components.id", ondelete="SET NULL"))
    # Snapshot of what the notification talks about (names, statuses, update text, component ids),
    # so a later edit never changes what an already-recorded event says.
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    # Earliest time delivery may start (component events wait out the debounce window).
    deliver_after: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16), default=EventState.PENDING)  # an EventState
    state_reason: Mapped[str | None] = mapped_column(String(200))
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime)
    progress_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    queued_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    expired_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    # What the visitors' service workers reported (push.seen): notifications shown and clicked,
    # counted per event only (no subscriber is identified) and never above sent_count.
    shown_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    opened_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    incident: Mapped[Incident | None] = relationship()
    component: Mapped[Component | None] = relationship()


class EventShownLatency(db.Model):
    """How long an event's notifications took from its fan-out to being shown: a histogram per
    event (push.seen.LATENCY_BUCKETS), so p50/p95 need no per-notification rows."""

    __tablename__ = "event_shown_latency"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    # Index into push.seen.LATENCY_BUCKETS: shown at most that many seconds after the fan-out.
    bucket: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    count: Mapped[int] = mapped_column(Integer, default=0)


subscription_components = Table(
    "subscription_components",
    db.metadata,
    Column("subscription_id", ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True),
    Column("component_id", ForeignKey("components.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Subscription(db.Model):
    """A browser push subscription. Deliberately no personal data: no IP, no full user agent."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))
    auth: Mapped[str] = mapped_column(String(40))
    expiration_time: Mapped[datetime | None] = mapped_column(DateTime)
    all_components: Mapped[bool] = mapped_column(Boolean, default=True)
    browser: Mapped[str] = mapped_column(String(40), default="Other")
    status: Mapped[str] = mapped_column(String(16), default=SubscriptionStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The page re-sends its subscription on each visit (rate-limited): proof the browser still
    # holds it, since Safari can answer 201 for subscriptions it revoked (see PUSH_STALE_DAYS).
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The visitor's choices besides components (push.subscriptions.CHOICES): maintenance events
    # too, or incidents only; and whether to hear that an incident is resolved.
    notify_maintenance: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    notify_resolved: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    components: Mapped[list[Component]] = relationship(secondary=subscription_components)


class Delivery(db.Model):
    """One event to one subscription: makes retries idempotent and feeds the counts."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("event_id", "subscription_id", name="uq_deliveries_event_subscription"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[str] = mapped_column(String(16))  # a DeliveryState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    status_code: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Trigger(db.Model):
    __tablename__ = "triggers"

    event_type: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    title_template: Mapped[str] = mapped_column(String(300))
    body_template: Mapped[str] = mapped_column(String(1000))
    urgency: Mapped[str] = mapped_column(String(10), default="normal")
    ttl: Mapped[int] = mapped_column(Integer, default=86400)
    # Optional conditions (push.triggers.condition_reason): incident events below this impact are
    # not sent; events about none of these components are not sent (None: any impact / component).
    min_impact: Mapped[str | None] = mapped_column(String(16))
    component_ids: Mapped[list[int] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PushSettings(db.Model):
    """Single-row table (id=1) with the site-wide push settings."""

    __tablename__ = "push_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    icon_url: Mapped[str | None] = mapped_column(String(500))
    badge_url: Mapped[str | None] = mapped_column(String(500))
    debounce_seconds: Mapped[int | None] = mapped_column(Integer)
    # push.formats.PayloadFormat: auto (declarative for Apple endpoints), classic or declarative.
    payload_format: Mapped[str] = mapped_column(String(16), default="auto", server_default="auto")
    # Lead times of the maintenance.reminder event, in minutes before a scheduled start; None
    # means the default ([60]), [] means no reminders.
    maintenance_reminder_minutes: Mapped[list[int] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class MaintenanceReminder(db.Model):
    """One reminder recorded for one schedule of a maintenance (its start time and the lead): the
    unique key makes recording it idempotent whoever races (sweeper, job, several workers), and a
    rescheduled maintenance has a new start time, so it gets reminders of its own."""

    __tablename__ = "maintenance_reminders"
    __table_args__ = (UniqueConstraint("incident_id", "scheduled_for", "lead_minutes",
                                       name="uq_maintenance_reminders_schedule_lead"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    scheduled_for: Mapped[datetime] = mapped_column(DateTime)
    lead_minutes: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class VapidKey(db.Model):
    __tablename__ = "vapid_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_key: Mapped[str] = mapped_column(String(100))
    # Fernet token of the raw private scalar, keyed from SECRET_KEY: a DB dump alone is not enough.
    private_key_encrypted: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class AdminAlert(db.Model):
    """Delivery problems shown to admins; one row per reason, bumped at most every 10 minutes."""

    __tablename__ = "admin_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(300), unique=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_alerted_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    alerts: Mapped[int] = mapped_column(Integer, default=1)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime)


class PublishRequest(db.Model):
    """The published snapshot's outbox: what a change needs re-rendered, written in the change's own
    transaction (statuspage/publish/changes.py), deleted once the files are written."""

    __tablename__ = "publish_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A topic ("components", "incident-list", "all", ...), "incident:<id>" or a public path ("/history/3").
    target: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set after a failed render: retried from then on (backoff), the previous file stays in place.
    not_before: Mapped[datetime | None] = mapped_column(DateTime)


class PublishStatus(db.Model):
    """Single row (id=1): how the published snapshot is doing, for the admin dashboard."""

    __tablename__ = "publish_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_published_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    last_files: Mapped[int] = mapped_column(Integer, default=0)
    # Publish rounds since the row was created (a round renders everything pending at its start).
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    files_written: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime)
    failing_since: Mapped[datetime | None] = mapped_column(DateTime)
    build_id: Mapped[str | None] = mapped_column(String(64))
