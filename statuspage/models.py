"""Database models (SQLAlchemy 2 typed declarative).

Enums are stored as short strings (not native DB enums) so adding a value never needs a
type migration; the allowed values live in the tuples below and are checked by the services.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

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
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved", "postmortem")
INCIDENT_IMPACTS = ("none", "minor", "major", "critical")
MAINTENANCE_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
RESOLVED_INCIDENT_STATUSES = ("resolved", "postmortem")
ROLES = ("admin", "editor")
SUBSCRIPTION_STATUSES = ("active", "expired", "unsubscribed")

EVENT_TYPES = (
    "incident.created",
    "incident.updated",
    "incident.resolved",
    "component.down",
    "component.recovered",
    "maintenance.scheduled",
    "maintenance.started",
    "maintenance.completed",
)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user", cascade="all, delete-orphan")

    # Flask-Login protocol
    is_active = True
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

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

    group: Mapped[ComponentGroup | None] = relationship(back_populates="components")


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
    # [{"code": id, "name": ..., "old_status": ..., "new_status": ...}] as Statuspage reports them
    affected_components: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

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
    # pending -> dispatched -> fanning_out -> sending -> done; or skipped / superseded
    state: Mapped[str] = mapped_column(String(16), default="pending")
    state_reason: Mapped[str | None] = mapped_column(String(200))
    fanned_out_at: Mapped[datetime | None] = mapped_column(DateTime)
    progress_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    queued_count: Mapped[int] = mapped_column(Integer, default=0)
    sent_count: Mapped[int] = mapped_column(Integer, default=0)
    expired_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)

    incident: Mapped[Incident | None] = relationship()
    component: Mapped[Component | None] = relationship()


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
    status: Mapped[str] = mapped_column(String(16), default="active")
    status_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_active_at: Mapped[datetime | None] = mapped_column(DateTime)

    components: Mapped[list[Component]] = relationship(secondary=subscription_components)


class Delivery(db.Model):
    """One event to one subscription: makes retries idempotent and feeds the counts."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("event_id", "subscription_id", name="uq_deliveries_event_subscription"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True)
    # sending (claimed, in flight) | retry (waiting for next_attempt_at) | sent | expired | failed
    outcome: Mapped[str] = mapped_column(String(16))
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
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class PushSettings(db.Model):
    """Single-row table (id=1) with the site-wide push settings."""

    __tablename__ = "push_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    icon_url: Mapped[str | None] = mapped_column(String(500))
    badge_url: Mapped[str | None] = mapped_column(String(500))
    debounce_seconds: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


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
