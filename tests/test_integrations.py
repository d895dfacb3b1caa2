"""Integrations on SQLite and PostgreSQL through the real HTTP layer (Flask test client): the admin API,
each kind's receiver with payloads shaped as the tools send them (tests/fixtures/integrations),
mapping alerts to components, resolving, replays, ownership, heartbeats, incidents from templates,
and bad input. Real Alertmanager, live-server races and logs are in test_integrations_live.py."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from statuspage.extensions import db
from statuspage.integrations.models import Integration, IntegrationAlert, IntegrationReceipt
from statuspage.jobs import run_delayed_jobs
from statuspage.sweeper import sweep
from tests.conftest import Api, create_admin_token
from tests.hardening_support import table_snapshot
from tests.integration_support import (
    am_alert,
    am_payload,
    create_integration,
    events,
    hook,
    load,
    status_of,
    statuses,
)

# What a receipt and the integration's "last received" legitimately record for any authenticated request.
RECEIPT_TABLES = ("integration_receipts",)


@pytest.fixture
def components(api) -> dict[str, int]:
    ids = {}
    for name in ("API", "Website", "Checkout"):
        response = api.post("/api/v1/components", json={"name": name})
        assert response.status_code == 201
        ids[name] = response.json["id"]
    return ids


def _state_without_receipts(app) -> dict:
    snapshot = table_snapshot(app)
    for table in RECEIPT_TABLES:
        snapshot.pop(table)
    with app.app_context():
        cols = [c for c in Integration.__table__.columns if c.name != "last_received_at"]
        snapshot["integrations"] = sorted(tuple(map(repr, r)) for r in db.session.execute(select(*cols)).all())
        db.session.remove()
    return snapshot


# --- the admin API ------------------------------------------------------------------------------

def test_creating_an_integration_answers_its_url_and_a_token_shown_once_and_stored_hashed(app, api, components):
    created = create_integration(api, "alertmanager", "Production")
    assert created["kind"] == "alertmanager" and created["id"] == 1
    assert created["url"] == "https://status.example.com/api/hooks/1"
    token = created["token"]
    assert token.startswith("sp_hook_") and len(token) > 40
    assert created["url_with_token"] == f"{created['url']}/{token}"
    assert created["status_map"] == {"critical": "major_outage", "warning": "partial_outage",
                                     "info": "degraded_performance"}
    assert created["component_label"] == "component"
    # Never again: not in GET, not in the list, and the database holds only its hash.
    assert "token" not in api.get("/api/v1/integrations/1").json
    assert all("token" not in i for i in api.get("/api/v1/integrations").json)
    assert token not in repr(table_snapshot(app))
    with app.app_context():
        assert db.session.get(Integration, 1).token_hash == hashlib.sha256(token.encode()).hexdigest()


def test_integrations_api_is_for_admins_only(app, client, components):
    editor = Api(client, create_admin_token(app, "editor@example.com", role="editor"))
    for method, path in (("get", "/api/v1/integrations"), ("post", "/api/v1/integrations"),
                         ("get", "/api/v1/integrations/1"), ("patch", "/api/v1/integrations/1"),
                         ("delete", "/api/v1/integrations/1"), ("post", "/api/v1/integrations/1/rotate-token")):
        kwargs = {"json": {"kind": "heartbeat", "name": "x"}} if method in ("post", "patch") else {}
        assert getattr(editor, method)(path, **kwargs).status_code == 403
        assert getattr(client, method)(path, **kwargs).status_code == 401


@pytest.mark.parametrize("body, field", [
    ({"kind": "nagios", "name": "x"}, "kind"),
    ({"kind": "alertmanager"}, "name"),
    ({"kind": "heartbeat", "name": "cron"}, "component_id"),
    ({"kind": "heartbeat", "name": "cron", "component_id": 99}, "component_id"),
    ({"kind": "alertmanager", "name": "x", "interval_seconds": 60}, "interval_seconds"),
    ({"kind": "heartbeat", "name": "x", "component_id": 1, "interval_seconds": 5}, "interval_seconds"),
    ({"kind": "alertmanager", "name": "x", "status_map": {"critical": "on_fire"}}, "status_map"),
    ({"kind": "alertmanager", "name": "x", "status_map": ["critical"]}, "status_map"),
    ({"kind": "alertmanager", "name": "x", "mappings": [{"label": "job", "value": "api", "component_id": 42}]},
     "mappings"),
    ({"kind": "alertmanager", "name": "x", "mappings": [{"label": "job", "value": "api"}]}, "mappings"),
    ({"kind": "grafana", "name": "x", "create_components": True}, "create_components"),
    ({"kind": "alertmanager", "name": "x", "incident": {"enabled": True, "name": "{incident_id} down"}}, "incident"),
    ({"kind": "alertmanager", "name": "x", "token": "mine"}, "token"),
])
def test_bad_integration_settings_are_refused_with_the_field_and_nothing_is_stored(app, api, components, body,
                                                                                    field):
    before = table_snapshot(app)
    response = api.post("/api/v1/integrations", json=body)
    assert response.status_code == 400, response.json
    assert response.json["error"] and response.json.get("field") == field, response.json
    assert table_snapshot(app) == before


def test_rotating_the_token_retires_the_old_one_and_deleting_lets_components_recover(app, api, client, components):
    am = create_integration(api, "alertmanager")
    assert hook(client, am, am_payload(am_alert("API"))).status_code == 200
    assert status_of(app, "API") == "major_outage"

    rotated = api.post(f"/api/v1/integrations/{am['id']}/rotate-token")
    assert rotated.status_code == 200 and rotated.json["token"] != am["token"]
    assert hook(client, am, am_payload(am_alert("Website"))).status_code == 401
    assert hook(client, {**am, "token": rotated.json["token"]}, am_payload(am_alert("Website"))).status_code == 200

    patched = api.patch(f"/api/v1/integrations/{am['id']}", json={"name": "Renamed", "component_label": "service"})
    assert patched.status_code == 200 and patched.json["name"] == "Renamed"
    assert patched.json["component_label"] == "service"

    assert api.delete(f"/api/v1/integrations/{am['id']}").status_code == 204
    # Its alerts went with it: the components it held down recover through the normal path.
    assert statuses(app)["API"] == ("operational", "monitoring")
    assert status_of(app, "Website") == "operational"
    assert events(app, "API") == [("component.down", "major_outage"), ("component.recovered", "operational")]
    assert api.get(f"/api/v1/integrations/{am['id']}").status_code == 404
    assert hook(client, {**am, "token": rotated.json["token"]}, am_payload(am_alert("API"))).status_code == 401


# --- Alertmanager ----------------------------------------------------------------------------------

def test_alertmanager_payload_sets_components_by_label_name_any_case_and_severity(app, client, api, components):
    am = create_integration(api, "alertmanager")
    response = hook(client, am, load("alertmanager_firing"))
    assert response.status_code == 200
    assert response.json["accepted"] == 2 and response.json["ignored"] == []
    assert {(c["component"], c["old_status"], c["new_status"]) for c in response.json["changed"]} == {
        ("API", "operational", "major_outage"), ("Website", "operational", "partial_outage")}
    assert statuses(app)["API"] == ("major_outage", "monitoring")  # critical
    assert status_of(app, "Website") == "partial_outage"  # warning; label "website"
    assert events(app) == [("component.down", "major_outage"), ("component.down", "partial_outage")]

    response = hook(client, am, load("alertmanager_resolved"))
    assert response.status_code == 200
    assert response.json["changed"] == [{"component": "API", "component_id": components["API"],
                                         "old_status": "major_outage", "new_status": "operational"}]
    assert status_of(app, "API") == "operational"
    assert status_of(app, "Website") == "partial_outage"  # its alert still fires
    assert events(app, "API")[-1] == ("component.recovered", "operational")


def test_resolving_one_alert_keeps_the_component_at_the_worst_alert_still_firing(app, client, api, components):
    am = create_integration(api, "alertmanager")
    critical = am_alert("API", name="ErrorRate", severity="critical")
    warning = am_alert("API", name="Latency", severity="warning")
    info = am_alert("API", name="Disk", severity="info")
    ended = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    hook(client, am, am_payload(warning))
    assert status_of(app, "API") == "partial_outage"
    hook(client, am, am_payload(critical, info))
    assert status_of(app, "API") == "major_outage"  # worst wins

    hook(client, am, am_payload({**critical, "status": "resolved", "endsAt": ended}))
    assert status_of(app, "API") == "partial_outage"
    hook(client, am, am_payload({**warning, "status": "resolved", "endsAt": ended}))
    assert status_of(app, "API") == "degraded_performance"
    hook(client, am, am_payload({**info, "status": "resolved", "endsAt": ended}))
    assert status_of(app, "API") == "operational"
    assert events(app, "API") == [("component.down", "partial_outage"), ("component.recovered", "operational")]


def test_an_alert_from_another_integration_keeps_the_component_down(app, client, api, components):
    am = create_integration(api, "alertmanager")
    grafana = create_integration(api, "grafana")
    hook(client, am, am_payload(am_alert("Checkout", severity="critical")))
    assert hook(client, grafana, load("grafana_firing")).status_code == 200  # Checkout, warning
    assert status_of(app, "Checkout") == "major_outage"

    resolved = am_alert("Checkout", status="resolved", severity="critical",
                        ends=datetime.now(UTC))
    hook(client, am, am_payload(resolved))
    assert status_of(app, "Checkout") == "partial_outage"  # Grafana's alert still fires
    response = hook(client, grafana, load("grafana_resolved"))
    assert response.json["changed"][0]["new_status"] == "operational"
    assert status_of(app, "Checkout") == "operational"


def test_components_are_found_by_id_by_mapping_rules_and_by_the_default_component(app, client, api, components):
    rule = {"label": "job", "value": "Shop-Frontend", "component_id": components["Checkout"]}
    am = create_integration(api, "alertmanager", component_label="service", mappings=[rule],
                            component_id=components["Website"])
    response = hook(client, am, am_payload(
        am_alert(None, name="ById", service=str(components["API"])),
        am_alert(None, name="ByRule", job="shop-frontend", service="API"),  # the rule is tried first
        am_alert(None, name="NoLabel", severity="warning"),
    ))
    assert response.status_code == 200 and response.json["accepted"] == 3
    assert status_of(app, "API") == "major_outage"
    assert status_of(app, "Checkout") == "major_outage"
    assert status_of(app, "Website") == "partial_outage"


def test_unknown_severity_counts_as_major_outage_with_a_warning_until_the_status_map_names_it(app, client, api,
                                                                                             components):
    am = create_integration(api, "alertmanager")
    response = hook(client, am, am_payload(am_alert("API", severity="page"), am_alert("Website", severity=None)))
    assert response.status_code == 200
    assert response.json["warnings"] == ["severity 'page' is not in the status map: treated as major_outage",
                                         "alert without a severity label: treated as major_outage"]
    assert status_of(app, "API") == "major_outage" and status_of(app, "Website") == "major_outage"

    # Changing the map re-applies it to the alerts already firing.
    patched = api.patch(f"/api/v1/integrations/{am['id']}", json={"status_map": {"PAGE": "degraded_performance"}})
    assert patched.status_code == 200
    assert patched.json["status_map"]["page"] == "degraded_performance"
    assert status_of(app, "API") == "degraded_performance"
    assert status_of(app, "Website") == "major_outage"


def test_a_valid_payload_that_matches_nothing_answers_202_with_what_was_ignored_and_changes_nothing(app, client,
                                                                                                   api, components):
    am = create_integration(api, "alertmanager")
    before = _state_without_receipts(app)
    response = hook(client, am, am_payload(am_alert("Billing"), am_alert(None, name="Unlabelled")))
    assert response.status_code == 202
    assert response.json["accepted"] == 0 and response.json["changed"] == []
    assert [i["reason"] for i in response.json["ignored"]] == [
        "no component named or numbered 'Billing' (label 'component')",
        "no 'component' label and no mapping rule matched"]
    assert _state_without_receipts(app) == before
    # The admin sees it: the receipt keeps the payload and what was ignored.
    detail = api.get(f"/api/v1/integrations/{am['id']}").json
    assert detail["last_receipt"]["http_status"] == 202
    assert "Billing" in detail["last_receipt"]["payload"]
    assert len(detail["last_receipt"]["result"]["ignored"]) == 2


@pytest.mark.parametrize("body, message", [
    (b"", "request body is empty"),
    (b"{not json", "malformed JSON"),
    (b"{\"version\": \"\xff\"}", "not UTF-8"),
    (b"[]", "must be a JSON object"),
    (json.dumps({"version": "3", "alerts": []}).encode(), 'version must be "4"'),
    (json.dumps({"version": "4"}).encode(), "alerts must be a list"),
    (json.dumps({"version": "4", "alerts": [{"status": "firing!", "labels": {}}]}).encode(),
     'alerts[0].status must be "firing" or "resolved"'),
    (json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"component": 1}}]}).encode(),
     "alerts[0].labels must be an object of string values"),
    (json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {}, "startsAt": "yesterday"}]}).encode(),
     "alerts[0].startsAt is not a valid RFC 3339 timestamp"),
    (json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"c": "\u0000"}}]}).encode(), "NUL"),
    (json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {}}] * 1001}).encode(),
     "at most 1000 are accepted"),
])
def test_malformed_alertmanager_payloads_get_a_clear_400_and_change_nothing(app, client, api, components, body,
                                                                            message):
    am = create_integration(api, "alertmanager")
    hook(client, am, am_payload(am_alert("API")))
    before = _state_without_receipts(app)
    response = hook(client, am, data=body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json["error"], response.json
    assert _state_without_receipts(app) == before
    receipt = api.get(f"/api/v1/integrations/{am['id']}").json["last_receipt"]
    assert receipt["http_status"] == 400 and message in receipt["error"]


def test_oversized_payloads_get_413_and_a_receipt(app, client, api, components):
    app.config["INTEGRATION_MAX_BYTES"] = 4096
    am = create_integration(api, "alertmanager")
    before = _state_without_receipts(app)
    big = am_payload(*[am_alert("API", name=f"A{i}") for i in range(40)])
    response = hook(client, am, big)
    assert response.status_code == 413 and "larger than 4096 bytes" in response.json["error"]
    assert _state_without_receipts(app) == before
    # The app-wide MAX_CONTENT_LENGTH (64 KB) does not apply: receivers take up to INTEGRATION_MAX_BYTES.
    app.config["INTEGRATION_MAX_BYTES"] = 1024 * 1024
    large = am_payload(*[am_alert("API", name=f"A{i}", note="x" * 100) for i in range(300)])
    assert len(json.dumps(large)) > 64 * 1024
    assert hook(client, am, large).status_code == 200


def test_receivers_answer_only_their_tools_methods(app, client, api, components):
    am = create_integration(api, "alertmanager")
    grafana = create_integration(api, "grafana")
    response = hook(client, am, method="get")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.json["error"] == "alertmanager integrations take POST"
    assert hook(client, grafana, load("grafana_firing"), method="put").status_code == 200  # Grafana's PUT option
    assert hook(client, am, method="delete").status_code == 405


# --- authentication -----------------------------------------------------------------------------

def test_wrong_or_missing_tokens_get_401_and_change_nothing_at_all(app, client, api, components):
    am = create_integration(api, "alertmanager")
    other = create_integration(api, "grafana")
    admin_token = api.headers["Authorization"].split()[1]
    before = table_snapshot(app)
    payload = load("alertmanager_firing")
    attempts = [
        client.post("/api/hooks/1", json=payload),
        client.post("/api/hooks/1", json=payload, headers={"Authorization": "Bearer " + am["token"][:-1]}),
        client.post("/api/hooks/1", json=payload, headers={"Authorization": "Bearer " + other["token"]}),
        client.post("/api/hooks/1", json=payload, headers={"Authorization": "Bearer " + admin_token}),
        client.post("/api/hooks/1", json=payload, headers={"Authorization": am["token"]}),
        client.post(f"/api/hooks/1/{am['token']}x", json=payload),
        client.post(f"/api/hooks/2/{am['token']}", json=payload),
        client.post(f"/api/hooks/99/{am['token']}", json=payload),
        client.post("/api/hooks/1", json=payload, auth=("user", "wrong")),
    ]
    for response in attempts:
        assert response.status_code == 401, response.json
        assert "token" in response.json["error"]
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert table_snapshot(app) == before


def test_the_token_in_the_url_or_as_basic_auth_password_works_for_tools_without_headers(app, client, api,
                                                                                         components):
    am = create_integration(api, "alertmanager")
    assert client.post(f"/api/hooks/{am['id']}/{am['token']}", json=am_payload(am_alert("API"))).status_code == 200
    assert client.post(f"/api/hooks/{am['id']}", json=am_payload(am_alert("Website")),
                       auth=("alertmanager", am["token"])).status_code == 200
    assert status_of(app, "API") == "major_outage" and status_of(app, "Website") == "major_outage"


# --- replays --------------------------------------------------------------------------------------

def test_replayed_and_duplicate_payloads_are_idempotent(app, client, api, components):
    am = create_integration(api, "alertmanager")
    start = datetime.now(UTC) - timedelta(minutes=30)
    firing = am_payload(am_alert("API", starts=start, fingerprint="aaaa"))
    resolved = am_payload(am_alert("API", status="resolved", starts=start, ends=start + timedelta(minutes=10),
                                   fingerprint="aaaa"))
    assert hook(client, am, firing).status_code == 200
    assert hook(client, am, firing).json["changed"] == []  # a duplicate changes nothing
    assert hook(client, am, resolved).status_code == 200
    assert status_of(app, "API") == "operational"

    # The old firing notification delivered again (a retry that arrived late): ignored.
    replay = hook(client, am, firing)
    assert replay.json["changed"] == [] and replay.json["ignored"][0]["reason"].startswith("replay: this alert "
                                                                                            "was already resolved")
    assert status_of(app, "API") == "operational"

    # A new episode (later startsAt) fires again; then the OLD resolution arrives late: ignored.
    later = start + timedelta(minutes=20)
    assert hook(client, am, am_payload(am_alert("API", starts=later, fingerprint="aaaa"))).status_code == 200
    assert status_of(app, "API") == "major_outage"
    late = hook(client, am, resolved)
    assert late.json["ignored"][0]["reason"].startswith("replay: older than the episode already recorded")
    assert status_of(app, "API") == "major_outage"
    # ... and so is an older firing episode, and a firing copy whose endsAt passed long ago.
    assert hook(client, am, am_payload(am_alert("API", starts=start - timedelta(hours=1), fingerprint="aaaa"))
                ).json["ignored"][0]["reason"].startswith("replay: older")
    expired = hook(client, am, am_payload(am_alert("Website", starts=start, ends=start + timedelta(minutes=1))))
    assert expired.status_code == 202 and expired.json["ignored"][0]["reason"].startswith("stale")
    assert status_of(app, "Website") == "operational"
    assert events(app, "API") == [("component.down", "major_outage"), ("component.recovered", "operational"),
                                  ("component.down", "major_outage")]


# --- Grafana ----------------------------------------------------------------------------------------

def test_grafana_contact_point_payloads_fire_and_resolve(app, client, api, components):
    grafana = create_integration(api, "grafana")
    response = hook(client, grafana, load("grafana_firing"))
    assert response.status_code == 200 and response.json["changed"][0]["new_status"] == "partial_outage"
    assert status_of(app, "Checkout") == "partial_outage"
    detail = api.get(f"/api/v1/integrations/{grafana['id']}").json
    assert detail["firing"][0]["fingerprint"] == "57c6d9296de2ad39"
    assert detail["firing"][0]["summary"] == "Checkout 5xx rate is high"
    assert hook(client, grafana, load("grafana_resolved")).status_code == 200
    assert status_of(app, "Checkout") == "operational"


def test_grafana_legacy_dashboard_alerts_are_refused_with_a_pointer_to_contact_points(app, client, api, components):
    grafana = create_integration(api, "grafana")
    legacy = {"dashboardId": 1, "evalMatches": [], "ruleName": "CPU", "state": "alerting", "title": "[Alerting] CPU"}
    response = hook(client, grafana, legacy)
    assert response.status_code == 400 and "legacy" in response.json["error"]


# --- Uptime Kuma ------------------------------------------------------------------------------------

def _kuma_form(payload: dict) -> dict:
    return {"data": json.dumps(payload)}


def test_uptime_kuma_monitors_go_down_and_up_as_json_form_data_or_get(app, client, api, components):
    kuma = create_integration(api, "uptime_kuma")
    down = hook(client, kuma, load("uptime_kuma_down"))
    assert down.status_code == 200
    assert statuses(app)["Website"] == ("major_outage", "monitoring")  # monitor "Website", tag severity=critical
    up = hook(client, kuma, load("uptime_kuma_up"))
    assert up.json["changed"][0]["new_status"] == "operational"

    # The same DOWN again is a replay of an older state (its time is before the UP): ignored.
    assert "replay" in hook(client, kuma, load("uptime_kuma_down")).json["ignored"][0]["reason"]
    assert status_of(app, "Website") == "operational"

    # The "form-data" body type: the same object JSON-encoded in the field `data` (a later check).
    later_down = load("uptime_kuma_down", ago=timedelta(minutes=-10))
    hook(client, kuma, data=_kuma_form(later_down), content_type="multipart/form-data")
    assert status_of(app, "Website") == "major_outage"
    # The GET method (newer versions): msg, heartbeat and monitor as query parameters.
    up = load("uptime_kuma_up", ago=timedelta(minutes=-10))
    query = {"msg": up["msg"], "heartbeat": json.dumps(up["heartbeat"]), "monitor": json.dumps(up["monitor"])}
    assert hook(client, kuma, method="get", query_string=query).status_code == 200
    assert status_of(app, "Website") == "operational"
    assert events(app, "Website") == [("component.down", "major_outage"), ("component.recovered", "operational")] * 2


def test_uptime_kuma_test_messages_pending_and_unknown_monitors_change_nothing(app, client, api, components):
    kuma = create_integration(api, "uptime_kuma")
    before = _state_without_receipts(app)
    test = hook(client, kuma, load("uptime_kuma_test"))
    assert test.status_code == 202 and "test or certificate notice" in test.json["notes"][0]
    pending = load("uptime_kuma_down")
    pending["heartbeat"]["status"] = 2
    assert "pending" in hook(client, kuma, pending).json["notes"][0]
    unknown = load("uptime_kuma_down")
    unknown["monitor"]["name"] = "Mail relay"
    response = hook(client, kuma, unknown)
    assert response.status_code == 202 and "'Mail relay'" in response.json["ignored"][0]["reason"]
    assert hook(client, kuma, {"heartbeat": {"status": 7}, "monitor": {"name": "x"}}).status_code == 400
    assert _state_without_receipts(app) == before


def test_uptime_kuma_can_create_a_component_for_a_new_monitor(app, client, api, components):
    kuma = create_integration(api, "uptime_kuma", create_components=True)
    payload = load("uptime_kuma_down")
    payload["monitor"].update(name="Mail relay", tags=[])
    assert hook(client, kuma, payload).status_code == 200
    assert statuses(app)["Mail relay"] == ("major_outage", "monitoring")


# --- who owns the status ---------------------------------------------------------------------------

def test_an_admins_manual_status_wins_over_monitoring_until_handed_back(app, client, api, components):
    am = create_integration(api, "alertmanager")
    api_id = components["API"]
    hook(client, am, am_payload(am_alert("API", name="ErrorRate", fingerprint="e1")))
    assert statuses(app)["API"] == ("major_outage", "monitoring")

    # The admin says it is fine (a false alarm): manual wins.
    response = api.patch(f"/api/v1/components/{api_id}", json={"status": "operational"})
    assert response.json["status_owner"] == "manual"
    held = hook(client, am, am_payload(am_alert("API", name="Latency", severity="warning", fingerprint="e2")))
    assert held.json["changed"] == []
    assert held.json["held"] == [{"component_id": api_id, "component": "API", "status": "operational",
                                  "wanted": "major_outage",
                                  "reason": "set by hand: hand it back to monitoring to apply"}]
    assert statuses(app)["API"] == ("operational", "manual")
    # Renaming the component (the admin form sends the status it showed) does not take ownership.
    api.patch(f"/api/v1/components/{components['Website']}", json={"name": "Web site"})
    assert statuses(app)["Web site"] == ("operational", "monitoring")

    # Handed back: the status follows the alerts firing now (the worst of them).
    back = api.post(f"/api/v1/components/{api_id}/hand-back")
    assert back.status_code == 200 and back.json["status"] == "major_outage"
    assert back.json["status_owner"] == "monitoring"
    assert back.json["changed"] == [{"component_id": api_id, "component": "API", "old_status": "operational",
                                     "new_status": "major_outage"}]
    ended = datetime.now(UTC)
    hook(client, am, am_payload(am_alert("API", status="resolved", name="ErrorRate", fingerprint="e1", ends=ended)))
    assert status_of(app, "API") == "partial_outage"
    assert events(app, "API") == [("component.down", "major_outage"), ("component.recovered", "operational"),
                                  ("component.down", "major_outage")]


def test_the_admin_components_page_shows_the_owner_and_hands_back(app, client, api, components):
    from statuspage.auth import create_user

    am = create_integration(api, "alertmanager")
    hook(client, am, am_payload(am_alert("API")))
    api.patch(f"/api/v1/components/{components['API']}", json={"status": "degraded_performance"})
    with app.app_context():
        create_user("ui@example.com", "correct horse battery", "admin")
        db.session.commit()
    client.post("/admin/login", data={"email": "ui@example.com", "password": "correct horse battery"})
    page = client.get("/admin/components").get_data(as_text=True)
    assert "Set by hand · monitoring wants Major outage" in page
    assert "Hand back to monitoring" in page
    # The edit form posts the status it showed: saving a name keeps the owner.
    client.post(f"/admin/components/{components['Website']}", data={
        "name": "Website", "status": "operational", "shown_status": "operational", "description": ""})
    assert statuses(app)["Website"] == ("operational", "monitoring")
    response = client.post(f"/admin/components/{components['API']}/hand-back")
    assert response.status_code == 302
    assert statuses(app)["API"] == ("major_outage", "monitoring")
    page = client.get("/admin/components").get_data(as_text=True)
    assert "Monitoring · 1 alert(s) firing" in page


def test_a_maintenance_window_holds_the_component_and_the_sweeper_applies_alerts_after_it(app, client, api,
                                                                                          components):
    am = create_integration(api, "alertmanager")
    start = datetime.now(UTC) - timedelta(minutes=1)
    created = api.post("/api/v1/maintenances", json={
        "name": "DB upgrade", "component_ids": [components["API"]],
        "scheduled_for": start.isoformat(), "scheduled_until": (start + timedelta(hours=1)).isoformat()})
    assert created.status_code == 201
    with app.app_context():
        sweep()
    assert statuses(app)["API"] == ("under_maintenance", "monitoring")  # a window does not take ownership

    response = hook(client, am, am_payload(am_alert("API")))
    assert response.json["held"][0]["reason"] == "under maintenance"
    assert status_of(app, "API") == "under_maintenance"

    assert api.post(f"/api/v1/maintenances/{created.json['id']}/updates",
                    json={"status": "completed"}).status_code == 201
    with app.app_context():
        assert sweep()["components_reconciled"] == 1
    assert statuses(app)["API"] == ("major_outage", "monitoring")


# --- incidents from templates ------------------------------------------------------------------------

def test_incidents_from_templates_are_off_by_default_and_open_and_resolve_when_enabled(app, client, api, components):
    plain = create_integration(api, "alertmanager")
    hook(client, plain, am_payload(am_alert("Website")))
    assert api.get("/api/v1/incidents").json == []

    am = create_integration(api, "alertmanager", "Prometheus", incident={
        "enabled": True, "name": "{component_name} is having trouble",
        "body": "{integration_name} says {component_name} is {status}: {alerts}.",
        "resolve_body": "{component_name} is back."})
    hook(client, am, am_payload(am_alert("API", name="ErrorRate", severity="warning", fingerprint="f1")))
    [incident] = api.get("/api/v1/incidents").json
    assert incident["name"] == "API is having trouble"
    assert incident["status"] == "investigating" and incident["impact"] == "major"
    assert incident["incident_updates"][0]["body"] == "Prometheus says API is partial outage: ErrorRate on API."
    assert [c["id"] for c in incident["components"]] == [components["API"]]
    # Getting worse does not open a second one; monitoring still owns the component.
    hook(client, am, am_payload(am_alert("API", name="Down", severity="critical", fingerprint="f2")))
    assert len(api.get("/api/v1/incidents").json) == 1
    assert statuses(app)["API"] == ("major_outage", "monitoring")

    ended = datetime.now(UTC)
    hook(client, am, am_payload(am_alert("API", status="resolved", name="ErrorRate", fingerprint="f1", ends=ended),
                                am_alert("API", status="resolved", name="Down", fingerprint="f2", ends=ended)))
    [incident] = api.get("/api/v1/incidents").json
    assert incident["status"] == "resolved"
    assert incident["incident_updates"][0]["body"] == "API is back."
    assert statuses(app)["API"] == ("operational", "monitoring")


# --- heartbeats --------------------------------------------------------------------------------------

def _age_last_ping(app, integration_id: int, seconds: float) -> None:
    with app.app_context():
        integration = db.session.get(Integration, integration_id)
        integration.last_ping_at -= timedelta(seconds=seconds)
        db.session.commit()


def test_a_heartbeat_waits_for_its_first_ping_goes_down_when_pings_stop_and_recovers_on_the_next(app, client, api,
                                                                                                 components):
    beat = create_integration(api, "heartbeat", "nightly backup", component_id=components["API"],
                              interval_seconds=60, grace_seconds=30)
    assert beat["heartbeat_state"] == "waiting for the first ping" and beat["status_map"] == {"missed": "major_outage"}
    with app.app_context():
        assert sweep()["heartbeats_missed"] == 0  # never pinged: nothing is overdue
    for method in ("get", "post", "head"):
        assert hook(client, beat, method=method).status_code == 200
    detail = api.get(f"/api/v1/integrations/{beat['id']}").json
    assert detail["heartbeat_state"] == "up" and detail["last_ping_at"]

    _age_last_ping(app, beat["id"], 89)  # within interval + grace
    with app.app_context():
        assert sweep()["heartbeats_missed"] == 0
    assert status_of(app, "API") == "operational"
    _age_last_ping(app, beat["id"], 2)  # 91 s: overdue
    with app.app_context():
        assert sweep()["heartbeats_missed"] == 1
        assert sweep()["heartbeats_missed"] == 0  # once
    assert statuses(app)["API"] == ("major_outage", "monitoring")
    detail = api.get(f"/api/v1/integrations/{beat['id']}").json
    assert detail["heartbeat_state"] == "missed"
    assert detail["last_receipt"]["method"] == "MISSED"
    assert detail["last_receipt"]["result"]["changed"][0]["new_status"] == "major_outage"

    response = hook(client, beat, method="post", data=b"backup finished in 42 s")
    assert response.status_code == 200 and response.json["changed"][0]["new_status"] == "operational"
    assert events(app, "API") == [("component.down", "major_outage"), ("component.recovered", "operational")]


def test_each_ping_schedules_a_check_for_when_its_deadline_passes(app, client, api, components):
    beat = create_integration(api, "heartbeat", component_id=components["Website"], interval_seconds=10,
                              grace_seconds=0, status_map={"missed": "partial_outage"})
    app.extensions["statuspage_delayed"] = []
    hook(client, beat, method="get")
    [(due, path, args)] = app.extensions["statuspage_delayed"]
    assert path == "statuspage.integrations.service.check_heartbeats" and args == ()
    _age_last_ping(app, beat["id"], 11)
    with app.app_context():
        run_delayed_jobs(app)
    assert status_of(app, "Website") == "partial_outage"


def test_pausing_an_integration_drops_its_alerts_and_its_receiver_refuses(app, client, api, components):
    am = create_integration(api, "alertmanager")
    hook(client, am, am_payload(am_alert("API")))
    assert api.patch(f"/api/v1/integrations/{am['id']}", json={"enabled": False}).status_code == 200
    assert status_of(app, "API") == "operational"
    response = hook(client, am, am_payload(am_alert("API")))
    assert response.status_code == 403 and "paused" in response.json["error"]
    with app.app_context():
        assert db.session.execute(select(IntegrationAlert)).first() is None
        assert db.session.execute(select(IntegrationReceipt).where(IntegrationReceipt.http_status == 403)
                                  ).first() is None


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_INTEGRATION="3 per minute",
                        RATELIMIT_INTEGRATION_AUTH="4 per minute")
def test_receivers_are_rate_limited_per_integration_and_wrong_tokens_per_client(app, client, api, components):
    am = create_integration(api, "alertmanager")
    grafana = create_integration(api, "grafana")
    for _ in range(3):
        assert hook(client, am, am_payload(am_alert("API"))).status_code == 200
    limited = hook(client, am, am_payload(am_alert("Website")))
    assert limited.status_code == 429 and limited.json["error"].startswith("too many requests")
    assert "Retry-After" in limited.headers
    assert status_of(app, "Website") == "operational"  # a refused request changes nothing
    assert hook(client, grafana, load("grafana_firing")).status_code == 200  # another integration's budget
    for _ in range(4):
        assert hook(client, {**grafana, "token": "sp_hook_wrong"}, load("grafana_firing")).status_code == 401
    assert hook(client, {**grafana, "token": "sp_hook_wrong"}, load("grafana_firing")).status_code == 429


# --- the admin pages -----------------------------------------------------------------------------------

def _signed_in(app, client, role: str = "admin"):
    from statuspage.auth import create_user

    with app.app_context():
        create_user(f"{role}@ui.example.com", "correct horse battery", role)
        db.session.commit()
    client.post("/admin/login", data={"email": f"{role}@ui.example.com", "password": "correct horse battery"})
    return client


def test_the_admin_integrations_pages_show_the_token_once_and_each_integrations_last_payload(app, api, components):
    import re

    browser = _signed_in(app, app.test_client())
    page = browser.post("/admin/integrations", data={"kind": "alertmanager", "name": "Prometheus"})
    assert page.status_code == 201
    html = page.get_data(as_text=True)
    [token] = re.findall(r'id="integration-token">([^<]+)<', html)
    assert "credentials: " + token in html  # the copy-paste Alertmanager snippet carries it, this once
    am = {"id": 1, "url": "https://status.example.com/api/hooks/1", "token": token}
    assert token not in browser.get("/admin/integrations/1").get_data(as_text=True)

    hook(app.test_client(), am, am_payload(am_alert("API", name="ErrorRate")))
    hook(app.test_client(), am, data=b'{"version": "3"}', content_type="application/json")
    listing = browser.get("/admin/integrations").get_data(as_text=True)
    assert "Prometheus" in listing and "1 alert(s) firing" in listing
    assert 'version must be "4"' in listing.replace("&#34;", '"')  # the last payload's error
    detail = browser.get("/admin/integrations/1").get_data(as_text=True)
    assert "API: Operational → Major outage" in detail  # what the first payload changed
    assert "ErrorRate on API" in detail  # the firing alert
    assert "POST → 400" in detail and "POST → 200" in detail

    saved = browser.post("/admin/integrations/1", data={
        "name": "Prometheus", "enabled": "1", "component_label": "service", "mapping_rows": "2",
        "map-label-0": "job", "map-value-0": "checkout", "map-component-0": str(components["Checkout"]),
        "severity_rows": "1", "sev-0": "page", "sev-status-0": "partial_outage"})
    assert saved.status_code == 302
    config = api.get("/api/v1/integrations/1").json
    assert config["component_label"] == "service"
    assert config["mappings"] == [{"label": "job", "value": "checkout", "component_id": components["Checkout"]}]
    assert config["status_map"]["page"] == "partial_outage"

    # Both ask first (issue 12): the first post answers with a confirmation page and changes nothing.
    assert "stops working at once" in browser.post("/admin/integrations/1/rotate").get_data(as_text=True)
    rotated = browser.post("/admin/integrations/1/rotate", data={"confirm": "yes"}).get_data(as_text=True)
    [new_token] = re.findall(r'id="integration-token">([^<]+)<', rotated)
    assert new_token != token
    assert "Delete the integration" in browser.post("/admin/integrations/1/delete").get_data(as_text=True)
    assert len(api.get("/api/v1/integrations").json) == 1
    assert browser.post("/admin/integrations/1/delete", data={"confirm": "yes"}).status_code == 302
    assert api.get("/api/v1/integrations").json == []
    assert status_of(app, "API") == "operational"

    editor = _signed_in(app, app.test_client(), role="editor")
    assert editor.get("/admin/integrations").status_code == 403
    assert "Integrations</a>" not in editor.get("/admin/").get_data(as_text=True)


def test_admin_integration_pages_escape_hostile_names_labels_and_payloads(app, client, api):
    from tests.test_security_web import page_problems

    hostile = "<script>alert('x')</script>\"'><img src=x onerror=alert(1)>"
    component = api.post("/api/v1/components", json={"name": hostile}).json
    am = create_integration(api, "alertmanager", hostile[:100], component_id=component["id"],
                            incident={"name": hostile, "body": hostile})
    alert = am_alert(component["name"], name=hostile, job=hostile)
    alert["annotations"] = {"summary": hostile}
    assert hook(client, am, am_payload(alert)).status_code == 200
    assert hook(client, am, data=hostile.encode(), content_type="application/json").status_code == 400
    browser = _signed_in(app, app.test_client())
    for path in ("/admin/integrations", f"/admin/integrations/{am['id']}", "/admin/components", "/admin/incidents"):
        page = browser.get(path)
        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store", path
        assert page_problems(page.get_data(as_text=True)) == [], path
