"""Helpers for the integration tests: the receiver fixtures (with their times moved to now), creating
integrations through the admin API, posting to receivers, and reading component state back."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from statuspage.extensions import db
from statuspage.models import Component, Event

FIXTURES = Path(__file__).parent / "fixtures" / "integrations"
# The fixtures' clock: their times are moved so that this instant becomes "now".
FIXTURE_NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
KUMA_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?$")


def _shift(value: Any, delta: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta) for v in value]
    if isinstance(value, str) and not value.startswith("0001-") and RFC3339.match(value):
        return (_parse(value) + delta).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, str) and KUMA_TIME.match(value):
        return (_parse(value.replace(" ", "T") + "Z") + delta).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return value


def _parse(value: str) -> datetime:
    text = value.rstrip("Z")
    if "." in text:
        head, frac = text.split(".")
        text = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def load(name: str, *, ago: timedelta = timedelta(0)) -> dict[str, Any]:
    """A fixture with every timestamp moved so the fixture's clock reads now (minus `ago`)."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return _shift(data, datetime.now(UTC) - ago - FIXTURE_NOW)


def am_alert(component: str | None, *, status: str = "firing", severity: str | None = "critical",
             name: str = "Down", starts: datetime | None = None, ends: datetime | None = None,
             fingerprint: str | None = None, **labels: str) -> dict[str, Any]:
    """One alert as Alertmanager's webhook payload writes it."""
    all_labels = {"alertname": name, **labels}
    if component is not None:
        all_labels["component"] = component
    if severity is not None:
        all_labels["severity"] = severity
    starts = starts or datetime.now(UTC) - timedelta(minutes=1)
    alert = {"status": status, "labels": all_labels, "annotations": {"summary": f"{name} on {component}"},
             "startsAt": starts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
             "endsAt": ends.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if ends else "0001-01-01T00:00:00Z",
             "generatorURL": "http://prometheus.example/graph"}
    if fingerprint:
        alert["fingerprint"] = fingerprint
    return alert


def am_payload(*alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {"receiver": "statuspage", "status": "firing" if firing else "resolved", "alerts": list(alerts),
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am.example",
            "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0}


def create_integration(api, kind: str, name: str | None = None, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/v1/integrations", json={"kind": kind, "name": name or kind, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def hook(client, integration: dict[str, Any], payload: Any = None, *, method: str = "post", **kw):
    """Post to an integration's receiver with its bearer token (as the tools do)."""
    headers = {"Authorization": f"Bearer {integration['token']}", **kw.pop("headers", {})}
    path = integration["url"].split("://", 1)[1].split("/", 1)[1]
    if payload is not None:
        kw["json"] = payload
    return getattr(client, method)("/" + path, headers=headers, **kw)


def statuses(app) -> dict[str, tuple[str, str]]:
    """component name -> (status, owner)."""
    with app.app_context():
        rows = db.session.execute(select(Component.name, Component.status, Component.status_owner)).all()
        db.session.remove()
    return {name: (status, owner) for name, status, owner in rows}


def status_of(app, name: str) -> str:
    return statuses(app)[name][0]


def events(app, component: str | None = None) -> list[tuple[str, str]]:
    """(type, status) of component events, oldest first."""
    with app.app_context():
        query = select(Event).where(Event.type.in_(("component.down", "component.recovered"))).order_by(Event.id)
        rows = [(e.type, e.context.get("status"), e.context.get("component_name"))
                for e in db.session.execute(query).scalars()]
        db.session.remove()
    return [(t, s) for t, s, n in rows if component is None or n == component]
