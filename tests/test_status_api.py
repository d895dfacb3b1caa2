"""The status page as a new user tries it: components and incidents through the admin API,
then the public page, the Statuspage-compatible JSON and the Atom feed."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from statuspage.extensions import db
from statuspage.models import Component, Event, Incident, IncidentUpdate
from statuspage.timeutil import utcnow

ATOM = "{http://www.w3.org/2005/Atom}"


def _table_counts(app) -> dict[str, int]:
    with app.app_context():
        return {m.__tablename__: db.session.execute(select(func.count()).select_from(m)).scalar_one()
                for m in (Component, Incident, IncidentUpdate, Event)}


def test_new_user_flow_component_incident_resolve(app, client, api):
    r = api.post("/api/v1/components", {"name": "API", "description": "Public REST API"})
    assert r.status_code == 201, r.json
    component_id = r.json["id"]
    assert r.json["status"] == "operational"

    r = api.post("/api/v1/incidents", {
        "name": "Elevated API errors", "status": "investigating", "impact": "major",
        "body": "We are **looking** into it.", "components": {str(component_id): "major_outage"},
    })
    assert r.status_code == 201, r.json
    incident_id = r.json["id"]
    assert r.json["components"][0]["status"] == "major_outage"

    page = client.get("/").get_data(as_text=True)
    assert "Elevated API errors" in page
    assert "Major System Outage" in page
    assert "<strong>looking</strong>" in page

    summary = client.get("/api/v2/summary.json").json
    assert summary["status"] == {"indicator": "critical", "description": "Major System Outage"}
    assert summary["page"]["name"] == "Example Status"
    assert set(summary["page"]) == {"id", "name", "url", "time_zone", "updated_at"}
    [incident] = summary["incidents"]
    assert incident["id"] == str(incident_id) and incident["impact"] == "major"
    assert incident["shortlink"] == f"https://status.example.com/incidents/{incident_id}"
    [component] = summary["components"]
    assert component["status"] == "major_outage" and component["id"] == str(component_id)

    feed = ET.fromstring(client.get("/feed.atom").data)
    titles = [e.find(f"{ATOM}title").text for e in feed.findall(f"{ATOM}entry")]
    assert titles == ["Elevated API errors"]

    r = api.post(f"/api/v1/incidents/{incident_id}/updates", {
        "status": "resolved", "body": "Fixed by rolling back.", "components": {str(component_id): "operational"},
    })
    assert r.status_code == 201, r.json
    assert r.json["status"] == "resolved" and r.json["resolved_at"]
    statuses = [u["status"] for u in r.json["incident_updates"]]
    assert statuses == ["resolved", "investigating"]

    detail = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert detail.index("Fixed by rolling back.") < detail.index("looking")  # newest first
    assert "Major outage → Operational" in detail
    assert client.get("/api/v2/status.json").json["status"]["indicator"] == "none"
    assert client.get("/api/v2/incidents/unresolved.json").json["incidents"] == []

    with app.app_context():
        types = db.session.execute(select(Event.type).order_by(Event.id)).scalars().all()
    assert types == ["component.down", "incident.created", "component.recovered", "incident.resolved"]


def test_update_that_does_not_resolve_records_incident_updated(app, api):
    incident_id = api.post("/api/v1/incidents", {"name": "Slow logins"}).json["id"]
    assert api.post(f"/api/v1/incidents/{incident_id}/updates",
                    {"status": "identified", "body": "Cause found"}).status_code == 201
    with app.app_context():
        types = db.session.execute(select(Event.type).order_by(Event.id)).scalars().all()
        update = db.session.execute(select(Event).where(Event.type == "incident.updated")).scalar_one()
    assert types == ["incident.created", "incident.updated"]
    assert update.context["update_body"] == "Cause found"
    assert update.context["status"] == "identified"


def test_v2_endpoints_have_statuspage_shapes(client, api):
    group = api.post("/api/v1/component-groups", {"name": "Core"}).json
    api.post("/api/v1/components", {"name": "Web", "group_id": group["id"], "status": "degraded_performance"})
    api.post("/api/v1/maintenances", {
        "name": "DB upgrade", "scheduled_for": "2099-01-01T10:00:00Z", "scheduled_until": "2099-01-01T11:00:00Z",
    })
    for path, key in [("/api/v2/components.json", "components"), ("/api/v2/incidents.json", "incidents"),
                      ("/api/v2/incidents/unresolved.json", "incidents"),
                      ("/api/v2/scheduled-maintenances.json", "scheduled_maintenances"),
                      ("/api/v2/scheduled-maintenances/upcoming.json", "scheduled_maintenances"),
                      ("/api/v2/scheduled-maintenances/active.json", "scheduled_maintenances")]:
        r = client.get(path)
        assert r.status_code == 200 and "page" in r.json and key in r.json, path
    components = client.get("/api/v2/components.json").json["components"]
    grp = next(c for c in components if c["group"])
    web = next(c for c in components if not c["group"])
    assert grp["components"] == [web["id"]] and web["group_id"] == grp["id"]
    assert grp["status"] == "degraded_performance"
    upcoming = client.get("/api/v2/scheduled-maintenances/upcoming.json").json["scheduled_maintenances"]
    assert upcoming[0]["status"] == "scheduled" and upcoming[0]["impact"] == "maintenance"
    assert upcoming[0]["scheduled_for"].startswith("2099-01-01T10:00:00")
    assert client.get("/api/v2/status.json").json["status"] == {"indicator": "minor",
                                                                "description": "Partially Degraded Service"}


def test_rejected_requests_are_clear_and_change_nothing(app, client, api):
    component_id = api.post("/api/v1/components", {"name": "API"}).json["id"]
    before = _table_counts(app)
    cases = [
        (api.post("/api/v1/incidents", data="{not json", content_type="application/json"), 400, "malformed JSON"),
        (api.post("/api/v1/incidents", {"name": "x", "colour": "red"}), 400, "unknown field"),
        (api.post("/api/v1/incidents", {"name": "x", "status": "on_fire"}), 400, "status must be one of"),
        (api.post("/api/v1/incidents", {"name": "x", "impact": 3}), 400, "impact must be a string"),
        (api.post("/api/v1/incidents", {"name": "x", "components": {"999": "major_outage"}}), 400, "does not exist"),
        (api.post("/api/v1/incidents", {"name": "x", "components": {str(component_id): "broken"}}), 400,
         "must be one of"),
        (api.post("/api/v1/incidents", {"status": "investigating"}), 400, "name is required"),
        (api.post("/api/v1/incidents", ["a list"]), 400, "must be a JSON object"),
        (api.patch(f"/api/v1/components/{component_id}", {"status": "sideways"}), 400, "status must be one of"),
        (api.post("/api/v1/incidents/424242/updates", {"body": "x"}), 404, "not found"),
        (api.get("/api/v1/incidents/abc"), 404, "not a valid id"),
        (client.post("/api/v1/incidents", json={"name": "x"}), 401, "bearer token"),
        (client.post("/api/v1/incidents", json={"name": "x"}, headers={"Authorization": "Bearer sp_wrong"}), 401,
         "invalid or revoked"),
        (api.post("/api/v1/maintenances", {"name": "m", "scheduled_for": "tomorrow",
                                           "scheduled_until": "2099-01-01T00:00:00Z"}), 400, "ISO 8601"),
        (api.post("/api/v1/maintenances", {"name": "m", "scheduled_for": "2099-01-02T00:00:00Z",
                                           "scheduled_until": "2099-01-01T00:00:00Z"}), 400, "must be after"),
        (api.delete("/api/v1/incidents"), 405, "not allowed"),
        (client.get("/api/v2/nope.json"), 404, "not found"),
    ]
    for response, status, fragment in cases:
        assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
        assert response.is_json and fragment in response.json["error"], response.json
    assert _table_counts(app) == before
    with app.app_context():
        assert db.session.get(Component, component_id).status == "operational"


def test_maintenance_starts_and_completes_on_time(app, api):
    from datetime import timedelta

    from statuspage.incidents import run_due_maintenances
    from statuspage.timeutil import utcnow

    component_id = api.post("/api/v1/components", {"name": "DB"}).json["id"]
    start = utcnow() + timedelta(hours=1)
    r = api.post("/api/v1/maintenances", {
        "name": "Upgrade", "scheduled_for": start.isoformat() + "Z",
        "scheduled_until": (start + timedelta(hours=1)).isoformat() + "Z", "component_ids": [component_id],
    })
    assert r.status_code == 201, r.json
    maintenance_id = r.json["id"]
    with app.app_context():
        assert run_due_maintenances() == 0
        m = db.session.get(Incident, maintenance_id)
        m.scheduled_for = utcnow() - timedelta(seconds=1)  # time passes
        db.session.commit()
        assert run_due_maintenances() == 1
        db.session.expire_all()
        m = db.session.get(Incident, maintenance_id)
        assert m.status == "in_progress"
        assert db.session.get(Component, component_id).status == "under_maintenance"
        m.scheduled_until = utcnow() - timedelta(seconds=1)
        db.session.commit()
        run_due_maintenances()
        db.session.expire_all()
        assert db.session.get(Incident, maintenance_id).status == "completed"
        assert db.session.get(Component, component_id).status == "operational"
        types = db.session.execute(select(Event.type).order_by(Event.id)).scalars().all()
    assert types == ["maintenance.scheduled", "maintenance.started", "maintenance.completed"]


@pytest.mark.parametrize("moves, expected", [
    # Straight to verifying: it has begun, so subscribers hear it started.
    (["verifying", "completed"], ["maintenance.scheduled", "maintenance.started", "maintenance.completed"]),
    # Completed before it ever started: called off, so no "Maintenance completed" for work not done.
    (["completed"], ["maintenance.scheduled"]),
])
def test_manual_maintenance_moves_announce_what_really_happened(app, api, moves, expected):
    start = utcnow() + timedelta(hours=3)
    maintenance_id = api.post("/api/v1/maintenances", {
        "name": "Upgrade", "scheduled_for": start.isoformat() + "Z",
        "scheduled_until": (start + timedelta(hours=1)).isoformat() + "Z",
    }).json["id"]
    for status in moves:
        r = api.post(f"/api/v1/maintenances/{maintenance_id}/updates", {"status": status, "body": f"Now {status}."})
        assert r.status_code == 201, r.json
    with app.app_context():
        types = db.session.execute(select(Event.type).where(Event.incident_id == maintenance_id)
                                   .order_by(Event.id)).scalars().all()
    assert types == expected


def test_component_crud_and_groups(api):
    group = api.post("/api/v1/component-groups", {"name": "Edge"}).json
    c = api.post("/api/v1/components", {"name": "CDN", "group_id": group["id"], "position": 3}).json
    assert api.patch(f"/api/v1/components/{c['id']}", {"name": "CDN (global)"}).json["name"] == "CDN (global)"
    assert [x["name"] for x in api.get("/api/v1/components").json] == ["CDN (global)"]
    assert api.delete(f"/api/v1/component-groups/{group['id']}").status_code == 204
    assert api.get(f"/api/v1/components/{c['id']}").json["group_id"] is None
    assert api.delete(f"/api/v1/components/{c['id']}").status_code == 204
    assert api.get(f"/api/v1/components/{c['id']}").status_code == 404


def test_history_pages_and_markdown_is_sanitized(client, api):
    for n in range(25):
        api.post("/api/v1/incidents", {"name": f"Incident {n}", "status": "resolved",
                                       "body": "<script>alert(1)</script>[x](javascript:alert(1)) *ok*"})
    first = client.get("/history").get_data(as_text=True)
    assert "Incident 24" in first and "Page 1 of 2" in first
    second = client.get("/history?page=2").get_data(as_text=True)
    assert "Incident 0" in second and "Incident 24" not in second
    assert client.get("/history?page=9").status_code == 404
    assert "<script>alert(1)" not in first and 'href="javascript:' not in first and "<em>ok</em>" in first
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in first  # shown as text, never run


def test_openapi_document_lists_the_admin_api(client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/components", "/api/v1/incidents", "/api/v1/incidents/{incident_id}/updates",
                 "/api/v1/maintenances", "/api/v1/triggers", "/api/v1/subscriptions", "/api/v1/events"):
        assert path in doc["paths"]


def test_times_are_shown_with_time_zone(sqlite_app):
    sqlite_app.config["SITE_TIMEZONE"] = "Europe/Berlin"
    token = __import__("tests.conftest", fromlist=["create_admin_token"]).create_admin_token(sqlite_app)
    client = sqlite_app.test_client()
    client.post("/api/v1/incidents", json={"name": "TZ"}, headers={"Authorization": f"Bearer {token}"})
    page = client.get("/").get_data(as_text=True)
    assert "CET" in page or "CEST" in page
    assert client.get("/api/v2/summary.json").json["page"]["time_zone"] == "Europe/Berlin"


def test_component_recovery_via_degraded_counts_as_recovered(app, api):
    cid = api.post("/api/v1/components", {"name": "Queue"}).json["id"]
    for status in ("major_outage", "degraded_performance", "operational", "degraded_performance", "operational"):
        assert api.patch(f"/api/v1/components/{cid}", {"status": status}).status_code == 200
    with app.app_context():
        types = db.session.execute(select(Event.type).order_by(Event.id)).scalars().all()
    assert types == ["component.down", "component.recovered"]
