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
    page = api.client.get(f"/incidents/{incident['id']}").get_data(as_text=True)
    assert "We are investigating." in page and 'class="edited">edited <time' in page


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


def test_deleting_an_incident_removes_it_and_its_updates_and_can_leave_components(app, api):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    api.post(f"/api/v1/incidents/{incident}/updates", json={"body": "more"})
    assert api.delete(f"/api/v1/incidents/{incident}?restore_components=false").status_code == 204
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


def test_deleting_a_maintenance_in_progress_ends_its_components_maintenance(app, api):
    db_id = _component(api, "Database")
    cache = _component(api, "Cache")
    first = api.post("/api/v1/maintenances", json={
        "name": "DB upgrade", "status": "in_progress", "scheduled_for": _iso(-10), "scheduled_until": _iso(50),
        "component_ids": [db_id, cache]}).get_json()
    other = api.post("/api/v1/maintenances", json={
        "name": "Cache resize", "status": "in_progress", "scheduled_for": _iso(-10), "scheduled_until": _iso(50),
        "component_ids": [cache]}).get_json()
    assert _statuses(app) == {"Database": "under_maintenance", "Cache": "under_maintenance"}
    assert api.delete(f"/api/v1/maintenances/{first['id']}").status_code == 204
    # Cache is still in the other open window; Database's window is gone.
    assert _statuses(app) == {"Database": "operational", "Cache": "under_maintenance"}
    assert api.delete(f"/api/v1/maintenances/{other['id']}").status_code == 204
    assert _statuses(app) == {"Database": "operational", "Cache": "operational"}


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


def test_form_edit_and_postmortem_errors_stand_next_to_their_text_which_is_kept(app, api, ui):
    incident = api.post("/api/v1/incidents", json={"name": "Login slow", "body": "typo"}).get_json()
    update_id = incident["incident_updates"][0]["id"]
    typed = "Fixed the typo\x07 but pasted a bell"
    r = ui.post(f"/admin/incidents/{incident['id']}/updates/{update_id}/edit", data={"body": typed})
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert f'id="error-edit-{update_id}-body"' in page and "control characters" in page
    assert f'aria-describedby="error-edit-{update_id}-body">Fixed the typo' in page  # the typing is kept
    assert '<details class="edit-update" open>' in page
    assert api.get(f"/api/v1/incidents/{incident['id']}").get_json()["incident_updates"][0]["body"] == "typo"

    api.post(f"/api/v1/incidents/{incident['id']}/updates", json={"status": "resolved", "body": "Done."})
    r = ui.post(f"/admin/incidents/{incident['id']}/postmortem", data={"postmortem_body": "Root cause\x00"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'id="error-postmortem_body"' in page
    assert 'aria-describedby="error-postmortem_body">Root cause' in page
    assert api.get(f"/api/v1/incidents/{incident['id']}").get_json()["status"] == "resolved"


# --- validation: unique names, past maintenance, messages next to fields, notify by trigger ---------

def test_component_names_are_unique_within_their_group_ignoring_case(app, api):
    eu = api.post("/api/v1/component-groups", json={"name": "EU"}).get_json()["id"]
    us = api.post("/api/v1/component-groups", json={"name": "US"}).get_json()["id"]
    _component(api, "API", group_id=eu)
    assert api.post("/api/v1/components", json={"name": "API", "group_id": us}).status_code == 201
    r = api.post("/api/v1/components", json={"name": " api ", "group_id": eu})
    assert r.status_code == 409 and r.get_json()["field"] == "name"
    assert "already exists in this group" in r.get_json()["error"]
    web = _component(api, "Web")
    assert api.post("/api/v1/components", json={"name": "WEB"}).status_code == 409
    other = _component(api, "Other")
    assert api.patch(f"/api/v1/components/{other}", json={"name": "web"}).status_code == 409
    assert api.patch(f"/api/v1/components/{web}", json={"name": "Web"}).status_code == 200  # itself
    moved = _component(api, "API")  # ungrouped: fine
    assert api.patch(f"/api/v1/components/{moved}", json={"group_id": eu}).status_code == 409
    assert sorted(c["name"] for c in api.get("/api/v1/components").get_json()) == ["API", "API", "API", "Other",
                                                                                   "Web"]


def test_group_names_are_unique(app, api):
    assert api.post("/api/v1/component-groups", json={"name": "Core"}).status_code == 201
    r = api.post("/api/v1/component-groups", json={"name": "CORE"})
    assert r.status_code == 409 and r.get_json()["field"] == "name"
    other = api.post("/api/v1/component-groups", json={"name": "Edge"}).get_json()["id"]
    assert api.patch(f"/api/v1/component-groups/{other}", json={"name": "core"}).status_code == 409


def test_deleting_a_group_never_leaves_two_components_of_one_name_side_by_side(app, api, ui):
    eu = api.post("/api/v1/component-groups", json={"name": "EU"}).get_json()["id"]
    _component(api, "API", group_id=eu)
    _component(api, "Web", group_id=eu)
    _component(api, "api")  # ungrouped, same name ignoring case
    r = api.delete(f"/api/v1/component-groups/{eu}")
    assert r.status_code == 409 and "rename one of them first" in r.get_json()["error"]
    page = ui.post(f"/admin/groups/{eu}/delete", data={"confirm": "yes"}, follow_redirects=True)
    assert page.status_code == 200 and "would put its “API” next to another “API”" in page.get_data(as_text=True)
    # Nothing changed: the group and its two components are still there.
    rows = {(c["name"], c["group_id"]) for c in api.get("/api/v1/components").get_json()}
    assert rows == {("API", eu), ("Web", eu), ("api", None)}
    # Renamed, the group goes and its components stay, ungrouped.
    moved = next(c["id"] for c in api.get("/api/v1/components").get_json() if c["name"] == "API")
    assert api.patch(f"/api/v1/components/{moved}", json={"name": "API (EU)"}).status_code == 200
    assert api.delete(f"/api/v1/component-groups/{eu}").status_code == 204
    rows = {(c["name"], c["group_id"]) for c in api.get("/api/v1/components").get_json()}
    assert rows == {("API (EU)", None), ("Web", None), ("api", None)}


def _iso(delta_minutes: float) -> str:
    from datetime import timedelta

    from statuspage.timeutil import utcnow

    return (utcnow() + timedelta(minutes=delta_minutes)).replace(microsecond=0).isoformat() + "Z"


def test_a_maintenance_in_the_past_is_refused_unless_confirmed(app, api):
    r = api.post("/api/v1/maintenances", json={"name": "Oops", "scheduled_for": _iso(-60 * 24),
                                               "scheduled_until": _iso(60)})
    assert r.status_code == 400 and r.get_json()["field"] == "scheduled_for"
    r = api.post("/api/v1/maintenances", json={"name": "Oops", "scheduled_for": _iso(-120),
                                               "scheduled_until": _iso(-60)})
    assert r.status_code == 400 and r.get_json()["field"] == "scheduled_until"
    assert api.get("/api/v1/maintenances").get_json() == []
    # A minute ago (typed as "now") is fine; so is an explicit allow_past, which starts it at once.
    assert api.post("/api/v1/maintenances", json={"name": "Now", "scheduled_for": _iso(-1),
                                                  "scheduled_until": _iso(60)}).status_code == 201
    r = api.post("/api/v1/maintenances", json={"name": "Started", "scheduled_for": _iso(-60),
                                               "scheduled_until": _iso(60), "allow_past": True})
    assert r.status_code == 201
    # Rescheduling into the past is refused the same way.
    later = api.post("/api/v1/maintenances", json={"name": "Later", "scheduled_for": _iso(60),
                                                   "scheduled_until": _iso(120)}).get_json()["id"]
    r = api.patch(f"/api/v1/maintenances/{later}", json={"scheduled_for": _iso(-600)})
    assert r.status_code == 400 and r.get_json()["field"] == "scheduled_for"
    assert api.patch(f"/api/v1/maintenances/{later}", json={"name": "Renamed"}).status_code == 200


def test_form_past_maintenance_asks_for_confirmation_next_to_the_field(app, api, ui):
    from datetime import timedelta

    from statuspage.timeutil import utcnow

    start = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    end = (utcnow() + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    form = {"name": "Typo", "scheduled_for": start, "scheduled_until": end, "auto_transition": "1"}
    page = ui.post("/admin/maintenances/new", data=form).get_data(as_text=True)
    assert 'id="error-scheduled_for">The start is in the past' in page
    assert 'aria-invalid="true" aria-describedby="error-scheduled_for"' in page
    assert 'name="allow_past"' in page and 'value="Typo"' in page
    assert api.get("/api/v1/maintenances").get_json() == []
    r = ui.post("/admin/maintenances/new", data={**form, "allow_past": "1"})
    assert r.status_code == 302
    assert api.get("/api/v1/maintenances").get_json()[0]["status"] == "in_progress"


def test_form_duplicate_component_name_shows_next_to_its_field_and_keeps_the_typing(app, api, ui):
    web = _component(api, "Web")
    other = _component(api, "Other")
    page = ui.post("/admin/components", data={"name": "web", "description": "typed", "showcase_field": "1"})
    text = page.get_data(as_text=True)
    assert 'id="error-new-name">A component named “web” already exists without a group' in text
    assert 'value="typed"' in text
    text = ui.post(f"/admin/components/{other}", data={"row": str(other), "name": "Web", "showcase_field": "1"}) \
        .get_data(as_text=True)
    assert f'id="error-c{other}-name">A component named “Web” already exists' in text
    assert f'id="error-c{web}-name"' not in text
    text = ui.post("/admin/groups", data={"name": ""}).get_data(as_text=True)
    assert 'id="error-group-name">Enter the name.</p>' in text


def test_notify_is_pre_ticked_only_when_the_trigger_would_send(app, api, ui):
    def notify_box() -> tuple[str, str]:
        page = ui.get("/admin/maintenances/new").get_data(as_text=True)
        return re.search(r'<input type="checkbox" name="notify"[^>]*>', page).group(0), page

    # Of the maintenance triggers only the reminder's is on by default; the box covers it too.
    notify, page = notify_box()
    assert "checked" in notify and "Notification preview" in page
    assert "Sends the “Maintenance reminder” notification (“Maintenance scheduled”, “Maintenance started”, " \
        "“Maintenance completed” turned off" in page
    api.put("/api/v1/triggers", json={"maintenance.reminder": {"enabled": False}})
    notify, page = notify_box()
    assert "checked" not in notify  # every maintenance trigger is off: it would send nothing
    assert "notifications are turned off in" in page
    api.put("/api/v1/triggers", json={"maintenance.scheduled": {"enabled": True}})
    notify, page = notify_box()
    assert "checked" in notify
    assert "Sends the “Maintenance scheduled” notification (“Maintenance reminder”, “Maintenance started”, " \
        "“Maintenance completed” turned off" in page
    page = ui.get("/admin/incidents/new").get_data(as_text=True)
    assert "checked" in re.search(r'<input type="checkbox" name="notify"[^>]*>', page).group(0)


# --- ordering -------------------------------------------------------------------------------------

def test_move_buttons_reorder_within_the_group_and_at_the_top_level(app, api, ui):
    core = api.post("/api/v1/component-groups", json={"name": "Core"}).get_json()["id"]
    a = _component(api, "A", group_id=core)
    b = _component(api, "B", group_id=core)
    web = _component(api, "Web")

    def members():
        rows = api.get("/api/v1/components").get_json()
        return [c["name"] for c in sorted(rows, key=lambda c: (c["position"], c["id"])) if c["group_id"] == core]

    r = ui.post("/admin/order/move", data={"kind": "component", "id": str(b), "direction": "up"})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"#order-c{b}")
    assert members() == ["B", "A"]
    r = ui.post("/admin/order/move", data={"kind": "component", "id": str(b), "direction": "up"},
                headers={"X-Requested-With": "fetch"})
    assert r.get_json() == {"place": 1}  # already first: stays
    ui.post("/admin/order/move", data={"kind": "group", "id": str(core), "direction": "down"})
    with app.app_context():
        from statuspage.components import order_token, top_level

        assert [order_token(i) for i in top_level()] == [f"c{web}", f"g{core}"]
    assert ui.post("/admin/order/move", data={"kind": "component", "id": str(a), "direction": "sideways"}) \
        .status_code == 302
    assert members() == ["B", "A"]
    r = ui.post("/admin/order/move", data={"kind": "component", "id": "99999", "direction": "up"},
                follow_redirects=True)
    assert "component 99999 not found" in r.get_data(as_text=True)


def test_drag_order_saves_a_whole_list_and_refuses_a_stale_one(app, api, ui):
    a, b, c = _component(api, "A"), _component(api, "B"), _component(api, "C")
    r = ui.post("/admin/order", data={"scope": "top", "order": f"c{c},c{a},c{b}"})
    assert r.status_code == 200 and r.get_json() == {"saved": True}
    rows = api.get("/api/v1/components").get_json()
    assert [x["name"] for x in sorted(rows, key=lambda x: x["position"])] == ["C", "A", "B"]
    for stale in (f"c{c},c{a}", f"c{c},c{a},c{a}", f"c{c},c{a},c{b},c999"):
        r = ui.post("/admin/order", data={"scope": "top", "order": stale})
        assert r.status_code == 409
    assert ui.post("/admin/order", data={"scope": "abc", "order": f"c{a}"}).status_code in (302, 303, 400)
    rows = api.get("/api/v1/components").get_json()
    assert [x["name"] for x in sorted(rows, key=lambda x: x["position"])] == ["C", "A", "B"]


def test_deleting_an_incident_drops_its_notifications_not_yet_sent(app, api):
    from statuspage.models import EventState

    incident = api.post("/api/v1/incidents", json={"name": "Gone", "body": "b"}).get_json()["id"]
    with app.app_context():
        db.session.execute(Event.__table__.update().values(state=EventState.PENDING, dispatched_at=None))
        db.session.commit()
    assert api.delete(f"/api/v1/incidents/{incident}").status_code == 204
    with app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        assert event.state == EventState.SKIPPED and event.state_reason == "the incident was deleted"


def test_the_api_sets_a_lists_order_with_the_same_rules(app, api):
    core = api.post("/api/v1/component-groups", json={"name": "Core"}).get_json()["id"]
    a, b = _component(api, "A", group_id=core), _component(api, "B", group_id=core)
    web = _component(api, "Web")
    r = api.put("/api/v1/component-order", json={"group_id": None, "order": [f"c{web}", f"g{core}"]})
    assert r.status_code == 200 and r.get_json() == {"group_id": None, "order": [f"c{web}", f"g{core}"]}
    r = api.put("/api/v1/component-order", json={"group_id": core, "order": [f"c{b}", f"c{a}"]})
    assert r.get_json()["order"] == [f"c{b}", f"c{a}"]
    for body, code in (({"group_id": core, "order": [f"c{b}"]}, 409), ({"order": "c1"}, 400),
                       ({"group_id": 999, "order": []}, 404), ({"order": [f"c{web}", f"g{core}"], "x": 1}, 400)):
        assert api.put("/api/v1/component-order", json=body).status_code == code, body


# --- review fixes ---------------------------------------------------------------------------

def test_history_leaves_out_maintenance_still_scheduled_until_it_starts(app, api):
    api.post("/api/v1/incidents", json={"name": "Past outage", "status": "resolved", "body": "Over."})
    m = api.post("/api/v1/maintenances", json={"name": "Future upgrade", "scheduled_for": "2099-01-01T10:00:00Z",
                                               "scheduled_until": "2099-01-01T11:00:00Z"}).get_json()
    history = api.client.get("/history").get_data(as_text=True)
    assert "Past outage" in history and "Future upgrade" not in history and "January 2099" not in history
    assert "Future upgrade" in api.client.get("/").get_data(as_text=True)  # still listed as scheduled there
    r = api.post(f"/api/v1/maintenances/{m['id']}/updates", json={"status": "in_progress", "body": "Started."})
    assert r.status_code == 201, r.get_json()
    assert "Future upgrade" in api.client.get("/history").get_data(as_text=True)


def _client_api_delete(api, path: str, body=None):
    return api.client.delete(path, json=body, headers=api.headers) if body is not None else api.delete(path)


def test_editing_an_updates_text_moves_the_incidents_updated_at(app, api):
    incident = api.post("/api/v1/incidents", json={"name": "Login slow", "body": "typo"}).get_json()
    update_id = incident["incident_updates"][0]["id"]
    before = api.client.get("/api/v2/summary.json").get_json()["incidents"][0]["updated_at"]
    import time

    time.sleep(1.1)  # the v2 JSON shows whole seconds
    r = api.patch(f"/api/v1/incidents/{incident['id']}/updates/{update_id}", json={"body": "Fixed text"})
    assert r.status_code == 200
    assert r.get_json()["updated_at"] > incident["updated_at"]
    after = api.client.get("/api/v2/summary.json").get_json()["incidents"][0]["updated_at"]
    assert after > before


def test_deleting_an_unresolved_incident_restores_its_components_by_default(app, api):
    web, db_, maint = _component(api, "Web"), _component(api, "Database"), _component(api, "Mail")
    other = _incident(api, {db_: "partial_outage"})
    incident = _incident(api, {web: "major_outage", db_: "major_outage", maint: "under_maintenance"})
    assert api.delete(f"/api/v1/incidents/{incident}").status_code == 204
    # Database is still in the other open incident; Mail is under maintenance.
    assert _statuses(app) == {"Web": "operational", "Database": "major_outage", "Mail": "under_maintenance"}
    assert api.get(f"/api/v1/incidents/{other}").status_code == 200


def test_delete_restore_components_flag_is_checked(app, api):
    web = _component(api, "Web")
    incident = _incident(api, {web: "major_outage"})
    r = api.delete(f"/api/v1/incidents/{incident}?restore_components=maybe")
    assert r.status_code == 400 and r.get_json()["field"] == "restore_components"
    r = _client_api_delete(api, f"/api/v1/incidents/{incident}", {"restore_components": "no"})
    assert r.status_code == 400 and r.get_json()["field"] == "restore_components"
    r = _client_api_delete(api, f"/api/v1/incidents/{incident}", {"restore_components": False})
    assert r.status_code == 204
    assert _statuses(app) == {"Web": "major_outage"}


def test_form_delete_pre_ticks_restoring_the_components(app, api, ui):
    web, db_ = _component(api, "Web"), _component(api, "Database")
    first = _incident(api, {web: "major_outage"})
    second = _incident(api, {db_: "major_outage"})
    page = ui.post(f"/admin/incidents/{first}/delete").get_data(as_text=True)
    assert re.search(r'<input type="checkbox" name="restore_components" value="1" checked>', page), page
    r = ui.post(f"/admin/incidents/{first}/delete", data={"confirm": "yes", "restore_components": "1"})
    assert r.status_code == 302
    r = ui.post(f"/admin/incidents/{second}/delete", data={"confirm": "yes"})  # unticked
    assert r.status_code == 302
    assert _statuses(app) == {"Web": "operational", "Database": "major_outage"}


def test_an_incident_created_resolved_keeps_named_statuses_and_restores_the_rest(app, api):
    web, db_ = _component(api, "Web"), _component(api, "Database")
    api.patch(f"/api/v1/components/{db_}", json={"status": "partial_outage"})
    r = api.post("/api/v1/incidents", json={"name": "Written up later", "status": "resolved", "body": "It was down.",
                                            "components": {str(web): "major_outage"}, "component_ids": [db_]})
    assert r.status_code == 201, r.get_json()
    assert _statuses(app) == {"Web": "major_outage", "Database": "operational"}
    r = api.post("/api/v1/incidents", json={"name": "Later still", "status": "resolved", "component_ids": [web],
                                            "restore_components": False})
    assert r.status_code == 201
    assert _statuses(app)["Web"] == "major_outage"


def _push_form(ui) -> dict[str, list[str]]:
    """Every field of the triggers form as the page fills it (so that a POST changes nothing)."""
    page = ui.get("/admin/push").get_data(as_text=True)
    form = page[page.index('id="trigger-form"'):page.index("</form>", page.index('id="trigger-form"'))]
    data: dict[str, list[str]] = {"section": ["triggers"]}
    for name, value in re.findall(r'<input id="[^"]*" name="((?:title|body)-[^"]+)" type="text" value="([^"]*)"', form):
        data[name] = [value.replace("&#39;", "'").replace("&quot;", '"').replace("&amp;", "&")]
    for name in re.findall(r'<input type="checkbox" name="(enabled-[^"]+)" value="1" checked', form):
        data[name] = ["1"]
    return data


def test_push_settings_form_errors_sit_next_to_the_field_and_keep_the_typing(app, api, ui):
    r = ui.post("/admin/push", data={"section": "settings", "enabled": "1", "icon_url": "/static/mine.png",
                                     "debounce_seconds": "ten", "maintenance_reminder_minutes": "1440, 60"})
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert re.search(r'id="debounce_seconds"[^>]*value="ten" aria-invalid="true" aria-describedby='
                     r'"error-debounce_seconds"><p class="field-error" id="error-debounce_seconds">Enter', page)
    assert 'value="/static/mine.png"' in page and 'value="1440, 60"' in page
    r = ui.post("/admin/push", data={"section": "settings", "icon_url": "javascript:alert(1)",
                                     "maintenance_reminder_minutes": "60, soon"})
    page = r.get_data(as_text=True)
    assert 'id="error-icon_url"' in page and 'value="javascript:alert(1)"' in page
    assert 'value="60, soon"' in page
    assert api.get("/api/v1/push/settings").get_json()["icon_url"] in (None, "")


def test_trigger_form_errors_name_their_row_and_keep_the_typing(app, api, ui):
    data = _push_form(ui)
    data["title-incident.resolved"] = ["Fixed: {incident_name}"]
    data["title-incident.created"] = ["Down: {nope}"]
    r = ui.post("/admin/push", data=data)
    page = r.get_data(as_text=True)
    assert r.status_code == 200
    assert ('aria-describedby="error-title_template-incident.created"><p class="field-error" '
            'id="error-title_template-incident.created">The title uses {nope}, which is not a placeholder') in page
    assert 'value="Down: {nope}"' in page and 'value="Fixed: {incident_name}"' in page
    triggers = {t["event_type"] if "event_type" in t else t["event"]: t for t in api.get("/api/v1/triggers").get_json()}
    assert triggers["incident.resolved"]["title_template"] != "Fixed: {incident_name}"  # nothing saved


def test_composer_component_errors_show_under_the_picker(app, api, ui):
    r = ui.post("/admin/incidents/new", data={"name": "x", "status": "investigating", "affected": ["abc"]})
    page = r.get_data(as_text=True)
    assert 'id="error-components"' in page and "component_ids" not in page.split('id="error-components"')[1][:200]


def test_form_past_maintenance_message_does_not_name_the_api_flag(app, api, ui):
    from datetime import timedelta

    from statuspage.timeutil import utcnow

    start = (utcnow() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    end = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = ui.post("/admin/maintenances/new", data={"name": "Old", "scheduled_for": start,
                                                    "scheduled_until": end}).get_data(as_text=True)
    assert 'id="error-scheduled_until">The end is in the past' in page and "allow_past)" not in page
    r = api.post("/api/v1/maintenances", json={"name": "Old", "scheduled_for": start + ":00Z",
                                               "scheduled_until": end + ":00Z"})
    assert "(allow_past)" in r.get_json()["error"]  # the API still names it
