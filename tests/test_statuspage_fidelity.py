"""Statuspage fidelity: the top-level status rules of Atlassian's support page, `Z` timestamps,
page.updated_at, affected_components / deliver_notifications / reminder_intervals, maintenance
moving components to under_maintenance (with an opt-out), postmortems, and the component
status history written with every change."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from statuspage.components import overall_status, set_component_status
from statuspage.extensions import db
from statuspage.models import Component, ComponentStatusChange, Event, Incident
from statuspage.timeutil import iso, utcnow
from tests.test_admin_ui import ui_app  # noqa: F401  (the signed-in admin UI fixture)

OP, MAINT, DEG, PART, MAJ = "operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"

# Rows of Atlassian's "Top-level status and incident impact calculations": (component statuses,
# unresolved incident impacts, maintenance in progress) -> (indicator, description).
TOP_LEVEL_RULES = [
    # 0 components: "always All Systems Operational (unless there is an active incident)"
    ([], [], False, ("none", "All Systems Operational")),
    ([], ["none"], False, ("none", "All Systems Operational")),
    ([], ["minor"], False, ("minor", "Minor Service Outage")),
    ([], ["major", "minor"], False, ("major", "Partial System Outage")),
    ([], ["critical"], False, ("critical", "Major System Outage")),
    ([], [], True, ("maintenance", "Service Under Maintenance")),
    ([], ["minor"], True, ("minor", "Minor Service Outage")),
    # 1 component: its status names the page
    ([OP], [], False, ("none", "All Systems Operational")),
    ([MAINT], [], False, ("maintenance", "Service Under Maintenance")),
    ([DEG], [], False, ("minor", "Partially Degraded Service")),
    ([PART], [], False, ("major", "Partial System Outage")),
    ([MAJ], [], False, ("critical", "Major System Outage")),
    # 2 or more, all in the same status
    ([OP, OP, OP], [], False, ("none", "All Systems Operational")),
    ([MAJ, MAJ], [], False, ("critical", "Major System Outage")),
    ([PART, PART, PART], [], False, ("major", "Partial System Outage")),
    ([DEG, DEG], [], False, ("minor", "Degraded System Service")),
    ([MAINT, MAINT], [], False, ("maintenance", "Service Under Maintenance")),
    # 2 or more, any in a status (worst first)
    ([OP, OP, OP, MAJ], [], False, ("major", "Partial System Outage")),
    ([MAJ, PART, DEG, MAINT], [], False, ("major", "Partial System Outage")),
    ([OP, PART], [], False, ("minor", "Minor Service Outage")),
    ([PART, DEG, MAINT], [], False, ("minor", "Minor Service Outage")),
    ([OP, DEG], [], False, ("minor", "Partially Degraded Service")),
    ([DEG, MAINT], [], False, ("minor", "Partially Degraded Service")),
    ([OP, MAINT], [], False, ("maintenance", "Service Under Maintenance")),
    # With components, the top-level status is calculated from all of them: an incident shows
    # through the statuses it sets, never by its impact alone.
    ([OP, OP, OP, OP], ["critical"], False, ("none", "All Systems Operational")),
    ([OP], ["major"], True, ("none", "All Systems Operational")),
    ([OP, DEG], ["critical"], False, ("minor", "Partially Degraded Service")),
]


@pytest.mark.parametrize("statuses, impacts, maintenance, expected", TOP_LEVEL_RULES)
def test_top_level_status_follows_atlassians_table(statuses, impacts, maintenance, expected):
    assert overall_status(statuses, impacts, maintenance_in_progress=maintenance) == expected


def _components(api, *statuses) -> list[int]:
    return [api.post("/api/v1/components", {"name": f"C{n}", "status": s}).json["id"] for n, s in enumerate(statuses)]


def test_one_of_four_in_major_outage_is_a_partial_system_outage_on_every_surface(client, api):
    _components(api, OP, OP, OP, MAJ)
    expected = {"indicator": "major", "description": "Partial System Outage"}
    assert client.get("/api/v2/status.json").json["status"] == expected
    assert client.get("/api/v2/summary.json").json["status"] == expected
    assert "Partial System Outage" in client.get("/").get_data(as_text=True)


def test_unresolved_critical_incident_without_components_follows_the_components(client, api):
    _components(api, OP, OP)
    api.post("/api/v1/incidents", {"name": "Mystery", "impact": "critical"})
    assert client.get("/api/v2/status.json").json["status"] == {"indicator": "none",
                                                                "description": "All Systems Operational"}


def test_on_a_page_without_components_an_active_incident_sets_the_status(client, api):
    api.post("/api/v1/incidents", {"name": "Everything is down", "impact": "critical"})
    assert client.get("/api/v2/status.json").json["status"] == {"indicator": "critical",
                                                                "description": "Major System Outage"}


# --- timestamps and page.updated_at ------------------------------------------------------

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def _timestamps(data, found=None):
    found = [] if found is None else found
    if isinstance(data, dict):
        for key, value in data.items():
            if key.endswith("_at") or key in ("scheduled_for", "scheduled_until"):
                if value is not None:
                    found.append(value)
            else:
                _timestamps(value, found)
    elif isinstance(data, list):
        for item in data:
            _timestamps(item, found)
    return found


def test_utc_pages_write_z_and_other_zones_their_offset(app, client, api):
    cid = _components(api, OP)[0]
    api.post("/api/v1/incidents", {"name": "Slow", "components": {str(cid): DEG}})
    stamps = _timestamps(client.get("/api/v2/summary.json").json)
    assert len(stamps) > 5 and all(STAMP.match(s) and s.endswith("Z") for s in stamps), stamps
    with app.app_context():
        winter, summer = datetime(2024, 1, 15, 12, 0, 0, 123000), datetime(2024, 7, 15, 12, 0, 0)
        assert iso(winter) == "2024-01-15T12:00:00.123Z"
        app.config["SITE_TIMEZONE"] = "Europe/Berlin"
        assert iso(winter) == "2024-01-15T13:00:00.123+01:00" and iso(summer) == "2024-07-15T14:00:00.000+02:00"
        app.config["SITE_TIMEZONE"] = "Europe/London"  # at +00:00 in winter, but not UTC itself
        assert iso(winter) == "2024-01-15T12:00:00.123+00:00"
        app.config["SITE_TIMEZONE"] = "America/Los_Angeles"
        assert iso(datetime(2021, 6, 30, 18, 28, 3, 815000)) == "2021-06-30T11:28:03.815-07:00"


def test_page_updated_at_is_always_a_timestamp_and_moves_when_an_incident_resolves(app, client, api):
    empty = client.get("/api/v2/status.json").json["page"]["updated_at"]
    assert STAMP.match(empty)  # the first admin's creation (the page's set-up), never null
    incident_id = api.post("/api/v1/incidents", {"name": "Blip"}).json["id"]
    opened = client.get("/api/v2/status.json").json["page"]["updated_at"]
    assert opened >= empty
    with app.app_context():
        item = db.session.get(Incident, incident_id)
        item.created_at = item.updated_at = utcnow() - timedelta(hours=2)
        db.session.commit()
    api.post(f"/api/v1/incidents/{incident_id}/updates", {"status": "resolved", "body": "ok"})
    after = client.get("/api/v2/status.json").json["page"]["updated_at"]
    assert after >= opened and STAMP.match(after)


def test_a_page_with_nothing_at_all_still_has_a_timestamp(client):
    page = client.get("/api/v2/summary.json").json["page"]
    assert page["updated_at"] == "1970-01-01T00:00:00.000Z"


# --- incident updates: affected_components, deliver_notifications, reminder_intervals ----

def test_every_update_repeats_the_incidents_components(client, api):
    web, db_ = _components(api, OP, OP)
    incident_id = api.post("/api/v1/incidents", {
        "name": "Errors", "components": {str(web): PART}, "component_ids": [db_]}).json["id"]
    api.post(f"/api/v1/incidents/{incident_id}/updates", {"body": "Still looking"})
    api.post(f"/api/v1/incidents/{incident_id}/updates", {"status": "resolved", "body": "Fixed",
                                                          "components": {str(web): OP}})
    [incident] = client.get("/api/v2/incidents.json").json["incidents"]
    resolved, looking, created = incident["incident_updates"]
    assert created["affected_components"] == [
        {"code": str(web), "name": "C0", "old_status": OP, "new_status": PART},
        {"code": str(db_), "name": "C1", "old_status": OP, "new_status": OP},
    ]
    assert looking["affected_components"] == [
        {"code": str(web), "name": "C0", "old_status": PART, "new_status": PART},
        {"code": str(db_), "name": "C1", "old_status": OP, "new_status": OP},
    ]
    assert resolved["affected_components"][0] == {"code": str(web), "name": "C0", "old_status": PART,
                                                  "new_status": OP}
    no_components = api.post("/api/v1/incidents", {"name": "Vague"}).json["id"]
    other = next(i for i in client.get("/api/v2/incidents.json").json["incidents"] if i["id"] == str(no_components))
    assert other["incident_updates"][0]["affected_components"] is None


def test_deliver_notifications_and_reminder_intervals(client, api):
    incident_id = api.post("/api/v1/incidents", {"name": "Quiet", "notify": False}).json["id"]
    api.post(f"/api/v1/incidents/{incident_id}/updates", {"body": "Loud", "notify": True})
    api.post("/api/v1/maintenances", {"name": "M", "scheduled_for": "2099-01-01T10:00:00Z",
                                      "scheduled_until": "2099-01-01T11:00:00Z", "notify": False})
    [incident] = client.get("/api/v2/incidents.json").json["incidents"]
    assert [u["deliver_notifications"] for u in incident["incident_updates"]] == [True, False]
    assert "reminder_intervals" in incident and incident["reminder_intervals"] is None
    [maintenance] = client.get("/api/v2/scheduled-maintenances.json").json["scheduled_maintenances"]
    assert maintenance["incident_updates"][0]["deliver_notifications"] is False
    assert maintenance["reminder_intervals"] is None


# --- maintenance moves its components ----------------------------------------------------

def _maintenance(api, components, **extra) -> int:
    r = api.post("/api/v1/maintenances", {"name": "Upgrade", "scheduled_for": "2099-01-01T10:00:00Z",
                                          "scheduled_until": "2099-01-01T11:00:00Z",
                                          "component_ids": components, **extra})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _statuses(client) -> dict[str, str]:
    return {c["name"]: c["status"] for c in client.get("/api/v2/components.json").json["components"]}


def test_maintenance_in_progress_puts_components_under_maintenance_and_back(app, client, api):
    web, db_, other = _components(api, OP, OP, OP)
    maintenance_id = _maintenance(api, [web, db_])
    api.post(f"/api/v1/maintenances/{maintenance_id}/updates", {"status": "in_progress", "body": "Starting"})
    assert _statuses(client) == {"C0": MAINT, "C1": MAINT, "C2": OP}
    assert client.get("/api/v2/status.json").json["status"] == {"indicator": "maintenance",
                                                                "description": "Service Under Maintenance"}
    [m] = client.get("/api/v2/scheduled-maintenances/active.json").json["scheduled_maintenances"]
    assert m["incident_updates"][0]["affected_components"][0] == {
        "code": str(web), "name": "C0", "old_status": OP, "new_status": MAINT}
    r = api.patch(f"/api/v1/maintenances/{maintenance_id}", {"status": "completed"})
    assert r.status_code == 200, r.json
    assert _statuses(client) == {"C0": OP, "C1": OP, "C2": OP}
    assert client.get("/api/v2/status.json").json["status"]["indicator"] == "none"
    with app.app_context():
        rows = db.session.execute(select(ComponentStatusChange.status).where(
            ComponentStatusChange.component_id == web).order_by(ComponentStatusChange.id)).scalars().all()
    assert rows == [OP, MAINT, OP]


def test_a_maintenance_can_opt_out_of_moving_its_components(client, api):
    web = _components(api, OP)[0]
    maintenance_id = _maintenance(api, [web], auto_transition_to_maintenance_state=False)
    r = api.post(f"/api/v1/maintenances/{maintenance_id}/updates", {"status": "in_progress"})
    assert r.json["auto_transition_to_maintenance_state"] is False
    assert _statuses(client) == {"C0": OP}
    assert client.get("/api/v2/status.json").json["status"]["indicator"] == "none"


def test_maintenance_leaves_worse_states_and_components_still_in_another_maintenance(client, api):
    broken, shared = _components(api, MAJ, OP)
    first = _maintenance(api, [broken, shared])
    second = _maintenance(api, [shared])
    for m in (first, second):
        api.post(f"/api/v1/maintenances/{m}/updates", {"status": "in_progress"})
    assert _statuses(client) == {"C0": MAJ, "C1": MAINT}
    api.post(f"/api/v1/maintenances/{first}/updates", {"status": "completed"})
    assert _statuses(client) == {"C0": MAJ, "C1": MAINT}  # the second one still covers it
    api.post(f"/api/v1/maintenances/{second}/updates", {"status": "completed"})
    assert _statuses(client) == {"C0": MAJ, "C1": OP}


def test_maintenance_created_in_progress_moves_its_components(client, api):
    web = _components(api, OP)[0]
    _maintenance(api, [web], status="in_progress")
    assert _statuses(client) == {"C0": MAINT}


# --- component status history ------------------------------------------------------------

def test_history_rows_are_written_with_each_change_and_roll_back_with_it(app, api):
    cid = _components(api, OP)[0]
    api.patch(f"/api/v1/components/{cid}", {"status": DEG})
    api.post("/api/v1/incidents", {"name": "x", "components": {str(cid): MAJ}})
    with app.app_context():
        component = db.session.get(Component, cid)
        set_component_status(component, PART)
        db.session.rollback()  # the change and its history row go together
        rows = db.session.execute(select(ComponentStatusChange).where(ComponentStatusChange.component_id == cid)
                                  .order_by(ComponentStatusChange.id)).scalars().all()
        assert [r.status for r in rows] == [OP, DEG, MAJ]
        assert rows[0].changed_at == component.created_at
        assert db.session.get(Component, cid).status == MAJ
    api.delete(f"/api/v1/components/{cid}")
    with app.app_context():
        assert db.session.execute(select(ComponentStatusChange)).first() is None


# --- postmortems -------------------------------------------------------------------------

def test_postmortem_on_a_resolved_incident(app, client, api):
    incident_id = api.post("/api/v1/incidents", {"name": "Outage"}).json["id"]
    body = "## What happened\nA bad deploy. <script>alert(1)</script> [x](javascript:alert(1)) **Fixed**."
    r = api.put(f"/api/v1/incidents/{incident_id}/postmortem", {"body": body})
    assert r.status_code == 409 and "only a resolved incident" in r.json["error"]
    api.post(f"/api/v1/incidents/{incident_id}/updates", {"status": "resolved", "body": "Done"})

    r = api.put(f"/api/v1/incidents/{incident_id}/postmortem", {"body": body})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "postmortem" and r.json["postmortem_body"] == body
    published = r.json["postmortem_published_at"]
    [v2] = client.get("/api/v2/incidents.json").json["incidents"]
    assert v2["status"] == "postmortem" and "postmortem_body" not in v2
    assert client.get("/api/v2/incidents/unresolved.json").json["incidents"] == []

    page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert "Postmortem" in page and "<strong>Fixed</strong>" in page
    assert "<script>alert(1)" not in page and 'href="javascript:' not in page
    feed = ET.fromstring(client.get("/feed.atom").data)
    content = feed.find("{http://www.w3.org/2005/Atom}entry/{http://www.w3.org/2005/Atom}content").text
    assert "Postmortem" in content and "<strong>Fixed</strong>" in content and "<script>" not in content

    again = api.put(f"/api/v1/incidents/{incident_id}/postmortem", {"body": "Rewritten", "notify": True})
    assert again.json["postmortem_body"] == "Rewritten" and again.json["postmortem_published_at"] == published
    with app.app_context():
        notified = db.session.execute(select(Event.notify).where(Event.type == "incident.updated")
                                      .order_by(Event.id)).scalars().all()
    assert notified == [False, True]  # notify defaults to false for postmortems

    removed = api.delete(f"/api/v1/incidents/{incident_id}/postmortem")
    assert removed.json["status"] == "resolved" and removed.json["postmortem_body"] is None
    assert "Postmortem" not in client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert api.delete(f"/api/v1/incidents/{incident_id}/postmortem").status_code == 404


def test_postmortem_input_is_checked(client, api):
    incident_id = api.post("/api/v1/incidents", {"name": "x", "status": "resolved"}).json["id"]
    maintenance_id = _maintenance(api, [])
    cases = [
        (api.put(f"/api/v1/incidents/{incident_id}/postmortem", {}), 400, "body is required"),
        (api.put(f"/api/v1/incidents/{incident_id}/postmortem", {"body": "x", "extra": 1}), 400, "unknown field"),
        (api.put(f"/api/v1/incidents/{incident_id}/postmortem", {"body": "x" * 60001}), 400, "at most"),
        (api.put(f"/api/v1/incidents/{incident_id}/postmortem", {"body": "x", "notify": "yes"}), 400, "true or false"),
        (api.put(f"/api/v1/incidents/{maintenance_id}/postmortem", {"body": "x"}), 404, "not found"),
        (api.put("/api/v1/incidents/999999/postmortem", {"body": "x"}), 404, "not found"),
        (api.post(f"/api/v1/incidents/{incident_id}/updates", {"status": "postmortem", "body": "x"}), 400,
         "postmortem"),
        (api.post("/api/v1/incidents", {"name": "y", "status": "postmortem"}), 400, "postmortem"),
        (client.put(f"/api/v1/incidents/{incident_id}/postmortem", json={"body": "x"}), 401, "bearer"),
    ]
    for response, status, fragment in cases:
        assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
        assert fragment in response.json["error"], response.json
    [incident] = client.get("/api/v2/incidents.json").json["incidents"]
    assert incident["status"] == "resolved"


# --- the admin UI: postmortem form, maintenance opt-out, uptime showcase ------------------

@pytest.fixture
def ui(request):
    from tests.test_admin_ui import _login

    app = request.getfixturevalue("ui_app")
    client = app.test_client()
    assert _login(client).status_code == 302
    return app, client


def test_admin_publishes_a_postmortem_and_schedules_an_opted_out_maintenance(ui):
    from tests.test_admin_ui import _csrf

    app, client = ui
    token = _csrf(client, "/admin/components")
    client.post("/admin/components", data={"csrf_token": token, "name": "API", "showcase_field": "1"})
    client.post("/admin/components", data={"csrf_token": token, "name": "Internal", "showcase_field": "1",
                                           "showcase": "1"})
    client.post("/admin/incidents/new", data={"csrf_token": token, "name": "Outage", "status": "investigating",
                                              "impact": "major", "body": "x"})
    with app.app_context():
        incident_id = db.session.execute(select(Incident.id)).scalar_one()
        assert [c.showcase for c in db.session.execute(select(Component).order_by(Component.id)).scalars()] == [
            False, True]
    page = client.get(f"/admin/incidents/{incident_id}").get_data(as_text=True)
    assert "A postmortem can be published once the incident is resolved." in page
    r = client.post(f"/admin/incidents/{incident_id}/postmortem", data={"csrf_token": token, "postmortem_body": "x"},
                    follow_redirects=True)
    assert "only a resolved incident can carry a postmortem" in r.get_data(as_text=True)
    client.post(f"/admin/incidents/{incident_id}", data={"csrf_token": token, "status": "resolved", "body": "ok"})
    r = client.post(f"/admin/incidents/{incident_id}/postmortem",
                    data={"csrf_token": token, "postmortem_body": "**Root cause**: a typo."}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "Postmortem published." in page and "Update postmortem" in page
    assert "<strong>Root cause</strong>" in client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    r = client.post(f"/admin/incidents/{incident_id}/postmortem/delete", data={"csrf_token": token})
    assert "Remove the postmortem" in r.get_data(as_text=True)  # asks first (issue 12)
    r = client.post(f"/admin/incidents/{incident_id}/postmortem/delete", data={"csrf_token": token, "confirm": "yes"},
                    follow_redirects=True)
    assert "Postmortem removed." in r.get_data(as_text=True)

    form = client.get("/admin/maintenances/new").get_data(as_text=True)
    assert 'name="auto_transition_to_maintenance_state" value="1" checked' in form
    client.post("/admin/maintenances/new", data={
        "csrf_token": token, "name": "Quiet upgrade", "scheduled_for": "2099-01-01T10:00",
        "scheduled_until": "2099-01-01T11:00", "affected": ["1"]})
    with app.app_context():
        m = db.session.execute(select(Incident).where(Incident.kind == "maintenance")).scalar_one()
        assert m.auto_transition_to_maintenance_state is False and [c.id for c in m.components] == [1]
    embed = client.get("/admin/components").get_data(as_text=True)
    assert "/embed.js" in embed and "/badge/1.svg" in embed and embed.count("Badges and widget") == 1
