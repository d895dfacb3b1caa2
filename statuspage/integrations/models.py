"""Integration tables: one row per integration, the alerts it reported, its recent receipts, and the
incident monitoring opened for a component."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from ..models import Component, Incident
from ..timeutil import utcnow


class IntegrationKind(StrEnum):
    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    UPTIME_KUMA = "uptime_kuma"
    HEARTBEAT = "heartbeat"


class Integration(db.Model):
    """A monitoring tool that may set component statuses through its receiver URL."""

    __tablename__ = "integrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # sha256 of the token (high-entropy, so a fast hash is enough); the token itself is shown once.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))
    # Alert label naming the component (by name, case-insensitive, or id).
    component_label: Mapped[str] = mapped_column(String(64), default="component")
    # Heartbeat: the component it watches. Alert kinds: where alerts that name no component go (optional).
    component_id: Mapped[int | None] = mapped_column(ForeignKey("components.id", ondelete="SET NULL"))
    # [{"label": ..., "value": ..., "component_id": ...}], tried in order before component_label.
    mappings: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # severity (lower case) -> component status; merged over service.DEFAULT_STATUS_MAP.
    status_map: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Uptime Kuma: a monitor that matches no component becomes a new component.
    create_components: Mapped[bool] = mapped_column(Boolean, default=False)
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    grace_seconds: Mapped[int | None] = mapped_column(Integer)
    last_ping_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Open an incident from these templates when a component goes down, resolve it on recovery.
    incident_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    incident_name: Mapped[str | None] = mapped_column(String(300))
    incident_body: Mapped[str | None] = mapped_column(String(2000))
    incident_resolve_body: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_received_at: Mapped[datetime | None] = mapped_column(DateTime)

    component: Mapped[Component | None] = relationship()


class IntegrationAlert(db.Model):
    """The last known state of one alert (by fingerprint) of one integration: the set of firing alerts
    decides component statuses; resolved rows are kept a while so a replayed firing is recognised."""

    __tablename__ = "integration_alerts"
    __table_args__ = (
        UniqueConstraint("integration_id", "fingerprint", name="uq_integration_alerts_integration_fingerprint"),
        Index("ix_integration_alerts_component_firing", "component_id", "firing"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    fingerprint: Mapped[str] = mapped_column(String(128))
    component_id: Mapped[int] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"))
    firing: Mapped[bool] = mapped_column(Boolean, default=True)
    # The component status this alert asks for while firing (from its severity through status_map).
    status: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(String(300), default="")
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    starts_at: Mapped[datetime | None] = mapped_column(DateTime)
    ends_at: Mapped[datetime | None] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    integration: Mapped[Integration] = relationship()
    component: Mapped[Component] = relationship()


class IntegrationReceipt(db.Model):
    """One authenticated request to a receiver: what came in, what it changed, what was wrong.
    The sweeper keeps the latest RECEIPTS_KEPT per integration."""

    __tablename__ = "integration_receipts"
    __table_args__ = (Index("ix_integration_receipts_integration_id_id", "integration_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    integration_id: Mapped[int] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    http_status: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(8))
    # The body as received (UTF-8, cut to service.PAYLOAD_KEPT characters); never the token.
    payload: Mapped[str] = mapped_column(Text, default="")
    # {"changed": [...], "held": [...], "ignored": [...], "warnings": [...]}
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(String(500))


class MonitoringIncident(db.Model):
    """The incident an integration opened for a component (one per component), resolved when the
    component recovers."""

    __tablename__ = "monitoring_incidents"

    component_id: Mapped[int] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    integration_id: Mapped[int | None] = mapped_column(ForeignKey("integrations.id", ondelete="SET NULL"))
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    incident: Mapped[Incident] = relationship()
    integration: Mapped[Integration | None] = relationship()
