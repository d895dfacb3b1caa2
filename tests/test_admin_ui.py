"""The admin web UI: login, CSRF, and the same services as the API behind its forms."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from statuspage.auth import create_user
from statuspage.extensions import db
from statuspage.models import Component, Event, Incident


def _login(client, email="admin@example.com", password="correct horse battery"):
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/admin/login", data={"email": email, "password": password, "csrf_token": token})


def _csrf(client, path):
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


@pytest.fixture
def ui_app(sqlite_app):
    sqlite_app.config["WTF_CSRF_ENABLED"] = True
    with sqlite_app.app_context():
        create_user("admin@example.com", "correct horse battery", "admin")
        db.session.commit()
    return sqlite_app


def test_admin_requires_login_and_rejects_wrong_password(ui_app):
    client = ui_app.test_client()
    assert client.get("/admin/").status_code == 302
    r = _login(client, password="wrong password")
    assert r.status_code == 401 and "Wrong email or password" in r.get_data(as_text=True)
    assert _login(client).status_code == 302
    r = client.get("/admin/")
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"


def test_forms_need_csrf_and_create_incident_with_component_status(ui_app):
    client = ui_app.test_client()
    _login(client)
    assert client.post("/admin/components", data={"name": "Web"}).status_code in (302, 303)
    with ui_app.app_context():
        assert db.session.execute(select(Component)).first() is None  # no CSRF token → nothing stored
    token = _csrf(client, "/admin/components")
    client.post("/admin/components", data={"name": "Web", "status": "operational", "csrf_token": token})
    with ui_app.app_context():
        component = db.session.execute(select(Component)).scalar_one()
    token = _csrf(client, "/admin/incidents/new")
    r = client.post("/admin/incidents/new", data={
        "csrf_token": token, "name": "Checkout failing", "status": "investigating", "impact": "major",
        "body": "Looking", "notify": "1", "affected": str(component.id), f"status-{component.id}": "partial_outage",
    })
    assert r.status_code == 302
    with ui_app.app_context():
        incident = db.session.execute(select(Incident)).scalar_one()
        assert incident.components[0].status == "partial_outage"
        assert {e.type for e in db.session.execute(select(Event)).scalars()} == {"incident.created",
                                                                                 "component.down"}
    page = client.get(r.headers["Location"]).get_data(as_text=True)
    assert "Checkout failing" in page and "Notification preview" in page
    token = _csrf(client, f"/admin/incidents/{incident.id}")
    client.post(f"/admin/incidents/{incident.id}", data={"csrf_token": token, "status": "resolved",
                                                         "body": "All good", "notify": "1"})
    with ui_app.app_context():
        assert db.session.get(Incident, incident.id).status == "resolved"


def test_form_errors_are_messages_not_500(ui_app):
    client = ui_app.test_client()
    _login(client)
    token = _csrf(client, "/admin/incidents/new")
    r = client.post("/admin/incidents/new", data={"csrf_token": token, "name": "", "status": "bogus"},
                    follow_redirects=True)
    assert r.status_code == 200
    # In plain words, next to the field (issue 12), not the API's "name must not be empty".
    assert 'id="error-name">Enter the title.</p>' in r.get_data(as_text=True)
    token = _csrf(client, "/admin/maintenances/new")
    r = client.post("/admin/maintenances/new", data={
        "csrf_token": token, "name": "m", "scheduled_for": "2099-01-02T10:00", "scheduled_until": "2099-01-01T10:00",
    }, follow_redirects=True)
    assert 'id="error-scheduled_until">The end must be after the start.</p>' in r.get_data(as_text=True)
    with ui_app.app_context():
        assert db.session.execute(select(Incident)).first() is None
