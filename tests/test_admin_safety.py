"""Issue 12's admin safety rules, through the API and the admin forms, on SQLite and PostgreSQL:
resolving restores components, empty updates are refused, picking a status selects the component."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from statuspage.auth import create_user
from statuspage.extensions import db
from statuspage.models import Component, Event, Incident


def _component(api, name: str, **extra) -> int:
    r = api.post("/api/v1/components", json={"name": name, **extra})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def _statuses(app) -> dict[str, str]:
    with app.app_context():
        return {c.name: c.status for c in db.session.execute(select(Component)).scalars()}


def _incident(api, components: dict[int, str], **extra) -> int:
    r = api.post("/api/v1/incidents", json={"name": "Checkout down", "impact": "major",
                                            "components": {str(k): v for k, v in components.items()}, **extra})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


# --- resolve restores -----------------------------------------------------------------------

def test_resolving_puts_the_incidents_components_back_to_operational(app, api):
    web, db_ = _component(api, "Web"), _component(api, "Database")
    incident = _incident(api, {web: "major_outage", db_: "degraded_performance"})
    r = api.post(f"/api/v1/incidents/{incident}/updates", json={"status": "resolved", "body": "Fixed."})
    assert r.status_code == 201
    assert _statuses(app) == {"Web": "operational", "Database": "operational"}
    update = r.get_json()["incident_updates"][0]
    assert {(a["name"], a["old_status"], a["new_status"]) for a in update["affected_components"]} == {
        ("Web", "major_outage", "operational"), ("Database", "degraded_performance", "operational")}
    summary = api.client.get("/api/v2/status.json").get_json()
    assert summary["status"]["description"] == "All Systems Operational"


def test_resolving_with_restore_components_false_leaves_them(app, api):
    web = _component(api, "Web")
    incident = _incident(api, {web: "partial_outage"})
    r = api.post(f"/api/v1/incidents/{incident}/updates",
                 json={"status": "resolved", "body": "Over.", "restore_components": False})
    assert r.status_code == 201
    assert _statuses(app) == {"Web": "partial_outage"}


def test_a_status_named_in_the_resolving_update_wins(app, api):
    web, db_ = _component(api, "Web"), _component(api, "Database")
    incident = _incident(api, {web: "major_outage", db_: "major_outage"})
    api.post(f"/api/v1/incidents/{incident}/updates",
             json={"status": "resolved", "body": "Web fine, DB still slow.",
                   "components": {str(db_): "degraded_performance"}})
    assert _statuses(app) == {"Web": "operational", "Database": "degraded_performance"}


def test_resolving_leaves_components_of_another_open_incident_and_under_maintenance(app, api):
    web, db_, cdn = _component(api, "Web"), _component(api, "Database"), _component(api, "CDN")
    first = _incident(api, {web: "major_outage", db_: "major_outage"})
    _incident(api, {db_: "major_outage"}, name="Database replication lag")
    api.patch(f"/api/v1/components/{cdn}", json={"status": "under_maintenance"})
    api.post(f"/api/v1/incidents/{first}/updates", json={"component_ids": [cdn], "body": "CDN too"})
    api.post(f"/api/v1/incidents/{first}/updates", json={"status": "resolved", "body": "Web is back."})
    assert _statuses(app) == {"Web": "operational", "Database": "major_outage", "CDN": "under_maintenance"}


def test_restore_components_must_be_a_boolean(app, api):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    r = api.post(f"/api/v1/incidents/{incident}/updates", json={"status": "resolved", "restore_components": "no"})
    assert r.status_code == 400 and r.get_json()["field"] == "restore_components"
    assert _statuses(app) == {"Web": "major_outage"}


def test_a_non_resolving_update_does_not_restore(app, api):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    api.post(f"/api/v1/incidents/{incident}/updates", json={"status": "monitoring", "body": "Fix deployed."})
    assert _statuses(app) == {"Web": "major_outage"}


# --- empty updates --------------------------------------------------------------------------

@pytest.mark.parametrize("body", [{}, {"body": "   \n "}, {"body": "", "notify": True}])
def test_an_update_that_says_and_changes_nothing_is_refused(app, api, body):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    r = api.post(f"/api/v1/incidents/{incident}/updates", json=body)
    assert r.status_code == 400 and r.get_json()["field"] == "body"
    assert "Write a message" in r.get_json()["error"]
    with app.app_context():
        assert len(db.session.get(Incident, incident).updates) == 1
        assert db.session.execute(select(Event).where(Event.type == "incident.updated")).first() is None


def test_naming_an_already_attached_component_without_a_change_is_empty_too(app, api):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    r = api.post(f"/api/v1/incidents/{incident}/updates", json={"component_ids": [web]})
    assert r.status_code == 400
    r = api.post(f"/api/v1/incidents/{incident}/updates", json={"components": {str(web): "major_outage"}})
    assert r.status_code == 400
    r = api.post(f"/api/v1/incidents/{incident}/updates", json={"components": {str(web): "partial_outage"}})
    assert r.status_code == 201


# --- the admin form ---------------------------------------------------------------------------

def _login(client):
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    client.post("/admin/login", data={"email": "ui@example.com", "password": "correct horse battery",
                                      "csrf_token": token})


@pytest.fixture
def ui(app):
    with app.app_context():
        create_user("ui@example.com", "correct horse battery", "admin")
        db.session.commit()
    client = app.test_client()
    _login(client)
    return client


def test_form_pre_ticks_restore_and_unticking_it_keeps_the_statuses(app, api, ui):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    page = ui.get(f"/admin/incidents/{incident}").get_data(as_text=True)
    assert re.search(r'name="restore_components" value="1"[^>]*checked', page)
    r = ui.post(f"/admin/incidents/{incident}", data={"status": "resolved", "body": "Done",
                                                      "restore_components_field": "1", "notify": "1"})
    assert r.status_code == 302
    assert _statuses(app) == {"Web": "major_outage"}


def test_form_resolving_restores_by_default(app, api, ui):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    ui.post(f"/admin/incidents/{incident}", data={"status": "resolved", "body": "Done", "restore_components_field": "1",
                                                  "restore_components": "1"})
    assert _statuses(app) == {"Web": "operational"}


def test_form_picking_a_status_selects_the_component(app, api, ui):
    _component(api, "Web")
    db_ = _component(api, "Database")
    r = ui.post("/admin/incidents/new", data={"name": "Slow", "status": "investigating", "impact": "minor",
                                              "body": "Looking", f"status-{db_}": "degraded_performance"})
    assert r.status_code == 302
    assert _statuses(app) == {"Web": "operational", "Database": "degraded_performance"}
    with app.app_context():
        incident = db.session.execute(select(Incident)).scalar_one()
        assert [c.name for c in incident.components] == ["Database"]


def test_form_empty_update_shows_the_message_and_stores_nothing(app, api, ui):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    r = ui.post(f"/admin/incidents/{incident}", data={"status": "investigating", "impact": "major", "body": " "},
                follow_redirects=True)
    assert r.status_code == 200 and "Write a message" in r.get_data(as_text=True)
    with app.app_context():
        assert len(db.session.get(Incident, incident).updates) == 1


# --- edit an update, delete an incident ----------------------------------------------------------

def _events(app, event_type: str) -> int:
    with app.app_context():
        return len(db.session.execute(select(Event).where(Event.type == event_type)).all())


def test_editing_an_update_changes_its_text_marks_it_edited_and_does_not_notify(app, api):
    incident = api.post("/api/v1/incidents", json={"name": "Login slow", "body": "We are investigatng."}).get_json()
    update_id = incident["incident_updates"][0]["id"]
    before = _events(app, "incident.updated")
    r = api.patch(f"/api/v1/incidents/{incident['id']}/updates/{update_id}", json={"body": "We are investigating."})
    assert r.status_code == 200, r.get_json()
    update = r.get_json()["incident_updates"][0]
    assert update["body"] == "We are investigating." and update["edited_at"]
    assert update["status"] == "investigating"
    assert _events(app, "incident.updated") == before
    public = api.client.get("/api/v2/incidents.json").get_json()["incidents"][0]["incident_updates"][0]
    assert public["body"] == "We are investigating." and public["updated_at"] >= public["created_at"]


def test_editing_with_notify_sends_incident_updated_with_the_corrected_text(app, api):
    incident = api.post("/api/v1/incidents", json={"name": "Login slow", "body": "typo"}).get_json()
    update_id = incident["incident_updates"][0]["id"]
    r = api.patch(f"/api/v1/incidents/{incident['id']}/updates/{update_id}", json={"body": "Fixed", "notify": True})
    assert r.status_code == 200
    with app.app_context():
        event = db.session.execute(select(Event).where(Event.type == "incident.updated")).scalar_one()
        assert event.context["update_body"] == "Fixed"


@pytest.mark.parametrize("body, field", [({"body": "  "}, "body"), ({}, "body"), ({"body": "x", "status": "resolved"},
                                                                                  "status")])
def test_editing_refuses_empty_text_and_other_fields(app, api, body, field):
    incident = api.post("/api/v1/incidents", json={"name": "Login slow", "body": "Original"}).get_json()
    update_id = incident["incident_updates"][0]["id"]
    r = api.patch(f"/api/v1/incidents/{incident['id']}/updates/{update_id}", json=body)
    assert r.status_code == 400 and r.get_json()["field"] == field
    assert api.get(f"/api/v1/incidents/{incident['id']}").get_json()["incident_updates"][0]["body"] == "Original"


def test_editing_an_update_of_another_incident_is_404(app, api):
    first = api.post("/api/v1/incidents", json={"name": "A", "body": "a"}).get_json()
    second = api.post("/api/v1/incidents", json={"name": "B", "body": "b"}).get_json()
    update_id = first["incident_updates"][0]["id"]
    r = api.patch(f"/api/v1/incidents/{second['id']}/updates/{update_id}", json={"body": "hijack"})
    assert r.status_code == 404


def test_deleting_an_incident_removes_it_and_its_updates_but_not_components(app, api):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    api.post(f"/api/v1/incidents/{incident}/updates", json={"body": "more"})
    assert api.delete(f"/api/v1/incidents/{incident}").status_code == 204
    assert api.get(f"/api/v1/incidents/{incident}").status_code == 404
    assert api.client.get("/api/v2/incidents.json").get_json()["incidents"] == []
    assert _statuses(app) == {"Web": "major_outage"}
    with app.app_context():
        assert all(e.incident_id is None for e in db.session.execute(select(Event)).scalars())
    assert api.delete(f"/api/v1/incidents/{incident}").status_code == 404


def test_deleting_a_maintenance_through_its_own_path(app, api):
    m = api.post("/api/v1/maintenances", json={"name": "DB upgrade", "scheduled_for": "2099-01-01T10:00:00Z",
                                               "scheduled_until": "2099-01-01T11:00:00Z"}).get_json()
    assert api.delete(f"/api/v1/incidents/{m['id']}").status_code == 404  # not an incident
    assert api.delete(f"/api/v1/maintenances/{m['id']}").status_code == 204
    assert api.get(f"/api/v1/maintenances/{m['id']}").status_code == 404


def test_form_delete_asks_first_saying_subscribers_were_notified(app, api, ui):
    incident = api.post("/api/v1/incidents", json={"name": "Login slow", "body": "b"}).get_json()["id"]
    with app.app_context():
        db.session.execute(Event.__table__.update().values(sent_count=7))
        db.session.commit()
    r = ui.post(f"/admin/incidents/{incident}/delete")
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Subscribers were already notified: 7 notification(s)" in page
    assert 'name="confirm" value="yes"' in page
    assert api.get(f"/api/v1/incidents/{incident}").status_code == 200  # nothing deleted yet
    r = ui.post(f"/admin/incidents/{incident}/delete", data={"confirm": "yes"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/incidents")
    assert api.get(f"/api/v1/incidents/{incident}").status_code == 404


def test_form_component_and_group_delete_need_confirmation(app, api, ui):
    web = _component(api, "Web")
    group = api.post("/api/v1/component-groups", json={"name": "Core"}).get_json()["id"]
    page = ui.post(f"/admin/components/{web}/delete").get_data(as_text=True)
    assert "Delete the component “Web”?" in page and "cannot be undone" in page
    page = ui.post(f"/admin/groups/{group}/delete").get_data(as_text=True)
    assert "Delete the group “Core”?" in page
    assert _statuses(app) == {"Web": "operational"}
    ui.post(f"/admin/components/{web}/delete", data={"confirm": "yes"})
    ui.post(f"/admin/groups/{group}/delete", data={"confirm": "yes"})
    assert _statuses(app) == {}
    assert api.get("/api/v1/component-groups").get_json() == []


def test_form_edit_update_marks_it_edited(app, api, ui):
    incident = api.post("/api/v1/incidents", json={"name": "Login slow", "body": "typo"}).get_json()
    update_id = incident["incident_updates"][0]["id"]
    r = ui.post(f"/admin/incidents/{incident['id']}/updates/{update_id}/edit", data={"body": "No typo"})
    assert r.status_code == 302
    page = ui.get(f"/admin/incidents/{incident['id']}").get_data(as_text=True)
    assert "No typo" in page and "edited" in page
    r = ui.post(f"/admin/incidents/{incident['id']}/updates/{update_id}/edit", data={"body": ""},
                follow_redirects=True)
    assert "can be changed but not emptied" in r.get_data(as_text=True)
