"""Referential integrity on both databases: SQLite enforces the foreign keys on every connection,
every ON DELETE rule fires (one test per foreign key in the metadata, so a key added later is
tested too), and ids are never handed out again -- the issue's deleted-component scenario."""
from __future__ import annotations

import itertools
from datetime import datetime

import pytest
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, delete, insert, select, text

import statuspage.models  # noqa: F401  (every table in the metadata)
from statuspage.extensions import db
from statuspage.models import Component, Event, Incident, Subscription, incident_components, subscription_components
from tests.conftest import Api, create_admin_token
from tests.hardening_support import with_keys
from tests.push.helpers import browser_subscription

ALL_FOREIGN_KEYS = sorted((fk for table in db.metadata.tables.values() for fk in table.foreign_keys),
                          key=lambda fk: (fk.parent.table.name, fk.parent.name))
_unique = itertools.count(1)


def _value(column):
    n = next(_unique)
    kind = column.type
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return n
    if isinstance(kind, DateTime):
        return datetime(2026, 1, 1)
    if isinstance(kind, JSON):
        return {}
    if isinstance(kind, String | Text):
        return f"v{n}"[: kind.length or 40]
    raise AssertionError(f"no test value for {column} ({kind!r}); teach _value about it")


def _make_row(table, **given) -> dict:
    """Insert a minimal valid row (creating the parents its required foreign keys need); returns
    its primary key as {column: value}."""
    values = dict(given)
    for column in table.columns:
        if column.name in values:
            continue
        if column.foreign_keys:
            if column.nullable and not column.primary_key:
                continue
            fk = next(iter(column.foreign_keys))
            values[column.name] = _make_row(fk.column.table)[fk.column.name]
        elif column.primary_key and isinstance(column.type, Integer) and len(table.primary_key.columns) == 1:
            continue  # the database picks the id
        elif column.nullable or column.default is not None or column.server_default is not None:
            continue
        else:
            values[column.name] = _value(column)
    result = db.session.execute(insert(table).values(values))
    key = dict(zip([c.name for c in table.primary_key.columns], result.inserted_primary_key, strict=True))
    return {**values, **key}


def test_every_foreign_key_says_what_happens_on_delete():
    assert len(ALL_FOREIGN_KEYS) >= 14
    for fk in ALL_FOREIGN_KEYS:
        assert (fk.ondelete or "").upper() in ("CASCADE", "SET NULL", "RESTRICT"), \
            f"{fk.parent.table.name}.{fk.parent.name} has no ON DELETE rule"


def test_sqlite_connections_enforce_foreign_keys(sqlite_app):
    with sqlite_app.app_context():
        assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        with pytest.raises(Exception, match="FOREIGN KEY"):
            db.session.execute(text("INSERT INTO incident_components (incident_id, component_id) VALUES (41, 42)"))
        db.session.rollback()


@pytest.mark.parametrize("fk", ALL_FOREIGN_KEYS, ids=lambda fk: f"{fk.parent.table.name}.{fk.parent.name}")
def test_on_delete_rule_fires(app, fk):
    child_table, parent_table = fk.parent.table, fk.column.table
    with app.app_context():
        parent = _make_row(parent_table)
        child = _make_row(child_table, **{fk.parent.name: parent[fk.column.name]})
        child_key = [child_table.c[name] == child[name] for name in (c.name for c in child_table.primary_key.columns)]
        db.session.commit()
        parent_key = parent_table.c[fk.column.name] == parent[fk.column.name]
        deleted = db.session.execute(delete(parent_table).where(parent_key))
        assert deleted.rowcount == 1
        db.session.commit()
        row = db.session.execute(select(child_table).where(*child_key)).mappings().first()
        rule = fk.ondelete.upper()
        if rule == "CASCADE":
            assert row is None, f"{child_table.name} row outlived its {parent_table.name}"
        elif rule == "SET NULL":
            assert row is not None and row[fk.parent.name] is None
        db.session.remove()


def test_a_deleted_components_id_is_never_given_to_a_new_one(app):
    """The issue's finding: a new component took a deleted one's id, old incidents then "affected"
    it, subscriber filters pointed at it, and a recovery was announced for it."""
    with_keys(app)
    api = Api(app.test_client(), create_admin_token(app))
    old = api.post("/api/v1/components", json={"name": "Old"}).get_json()["id"]
    incident = api.post("/api/v1/incidents", json={"name": "Old is down", "components": {str(old): "major_outage"}})
    assert incident.status_code == 201
    body = {**browser_subscription(), "components": [old]}
    assert api.client.post("/api/push/subscriptions", json=body).status_code == 201
    assert api.delete(f"/api/v1/components/{old}").status_code == 204

    new = api.post("/api/v1/components", json={"name": "New"}).get_json()["id"]
    assert new > old
    assert api.get(f"/api/v1/incidents/{incident.get_json()['id']}").get_json()["components"] == []
    # a blip of the new component is no "recovery" (there was no outage of it)
    assert api.patch(f"/api/v1/components/{new}", json={"status": "degraded_performance"}).status_code == 200
    assert api.patch(f"/api/v1/components/{new}", json={"status": "operational"}).status_code == 200
    with app.app_context():
        assert db.session.execute(select(incident_components)).all() == []
        assert db.session.execute(select(subscription_components)).all() == []
        events = db.session.execute(select(Event.type, Event.component_id).order_by(Event.id)).all()
        assert [tuple(e) for e in events if e.type.startswith("component.")] == [("component.down", None)]
        assert db.session.get(Incident, 1).components == []
        assert db.session.execute(select(Subscription.all_components)).scalar() is False
        assert [c.id for c in db.session.execute(select(Component)).scalars()] == [new]
