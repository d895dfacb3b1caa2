"""Per-subscriber choices (issue 16): incidents only or incidents plus maintenance, and whether to
hear that an incident is resolved. They are stored with the subscription, accepted by
POST /api/push/subscriptions, kept when a later request leaves them out, and honoured by fan-out
(the event's counts still add up, so it finishes)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from statuspage.extensions import db
from statuspage.models import Event, Subscription
from tests.push import helpers as ph


def _incident(api, **fields) -> int:
    r = api.post("/api/v1/incidents", json={"name": "Database unavailable", "status": "investigating",
                                            "impact": "major", "body": "Looking.", **fields})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _events(sim, sub) -> list[str]:
    return [m.payload["event"] for m in sim.received(sub.token)]


def test_fan_out_honours_maintenance_and_resolved_choices(eager_app, sim, eager_api):
    api = eager_api
    key = ph.generate_keys(eager_app)
    assert api.put("/api/v1/triggers", json={"maintenance.scheduled": {"enabled": True},
                                             "maintenance.started": {"enabled": True}}).status_code == 200
    everything, _ = ph.subscribe(api.client, sim, key)
    incidents_only, _ = ph.subscribe(api.client, sim, key, maintenance=False)
    no_resolved, _ = ph.subscribe(api.client, sim, key, resolved=False)
    minimal, _ = ph.subscribe(api.client, sim, key, maintenance=False, resolved=False)
    subs = (everything, incidents_only, no_resolved, minimal)

    start = datetime.now(UTC) + timedelta(days=1)
    r = api.post("/api/v1/maintenances", json={
        "name": "Database upgrade", "scheduled_for": start.isoformat(),
        "scheduled_until": (start + timedelta(hours=1)).isoformat(), "body": "Upgrading."})
    assert r.status_code == 201, r.json
    assert [_events(sim, s) for s in subs] == [["maintenance.scheduled"], [], ["maintenance.scheduled"], []]

    incident_id = _incident(api)
    r = api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "resolved", "body": "Fixed."})
    assert r.status_code == 201, r.json
    assert [_events(sim, s) for s in subs] == [
        ["maintenance.scheduled", "incident.created", "incident.resolved"],
        ["incident.created", "incident.resolved"],
        ["maintenance.scheduled", "incident.created"],
        ["incident.created"],
    ]
    # Only those who chose an event were counted for it, so every event finished.
    by_type = {e.type: e for e in ph.event_rows(eager_app)}
    assert {t: (e.state, e.queued_count, e.sent_count) for t, e in by_type.items()} == {
        "maintenance.scheduled": ("done", 2, 2),
        "incident.created": ("done", 4, 4),
        "incident.resolved": ("done", 2, 2),
    }


def test_choices_combine_with_the_component_filter(eager_app, sim, eager_api):
    api = eager_api
    key = ph.generate_keys(eager_app)
    r = api.post("/api/v1/components", json={"name": "Database"})
    assert r.status_code == 201, r.json
    database = r.json["id"]
    r = api.post("/api/v1/components", json={"name": "Website"})
    website = r.json["id"]
    db_no_resolved, _ = ph.subscribe(api.client, sim, key, components=[database], resolved=False)
    web_all, _ = ph.subscribe(api.client, sim, key, components=[website])

    incident_id = _incident(api, component_ids=[database])
    api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "resolved", "body": "Fixed."})
    assert _events(sim, db_no_resolved) == ["incident.created"]
    assert _events(sim, web_all) == []


@pytest.mark.app_config(PUSH_DEBOUNCE_SECONDS=0)
def test_component_recovery_counts_as_a_resolved_notice(eager_app, sim, eager_api):
    api = eager_api
    key = ph.generate_keys(eager_app)
    assert api.put("/api/v1/triggers", json={"component.down": {"enabled": True},
                                             "component.recovered": {"enabled": True}}).status_code == 200
    component = api.post("/api/v1/components", json={"name": "API"}).json["id"]
    told_all, _ = ph.subscribe(api.client, sim, key)
    no_resolved, _ = ph.subscribe(api.client, sim, key, resolved=False)
    for status in ("major_outage", "operational"):
        assert api.patch(f"/api/v1/components/{component}", json={"status": status}).status_code == 200
    assert _events(sim, told_all) == ["component.down", "component.recovered"]
    assert _events(sim, no_resolved) == ["component.down"]


# --- the API ---------------------------------------------------------------------------------------

def test_choices_default_to_everything_and_are_reported_back(eager_app, sim, eager_api):
    key = ph.generate_keys(eager_app)
    sub = sim.new_subscription(key)
    r = eager_api.client.post("/api/push/subscriptions", json=sub.to_json())
    assert r.status_code == 201
    assert (r.json["maintenance"], r.json["resolved"]) == (True, True)
    [row] = eager_api.get("/api/v1/subscriptions").json["subscriptions"]
    assert (row["maintenance"], row["resolved"]) == (True, True)


def test_a_request_that_leaves_choices_out_keeps_them(eager_app, sim, eager_api):
    client = eager_api.client
    key = ph.generate_keys(eager_app)
    sub = sim.new_subscription(key)
    r = client.post("/api/push/subscriptions", json={**sub.to_json(), "maintenance": False, "resolved": False})
    assert r.status_code == 201
    sub_id = r.json["id"]
    # The page's daily re-sync and the service worker's resubscribe send only the subscription.
    r = client.post("/api/push/subscriptions", json=sub.to_json())
    assert (r.status_code, r.json["maintenance"], r.json["resolved"]) == (200, False, False)
    r = client.post("/api/push/subscriptions", json={**sub.to_json(), "resolved": True})
    assert (r.json["maintenance"], r.json["resolved"]) == (False, True)
    # pushsubscriptionchange moves the row to a new endpoint with its choices.
    moved = sim.new_subscription(key)
    r = client.post("/api/push/subscriptions", json={**moved.to_json(), "oldEndpoint": sub.endpoint})
    assert r.json["id"] == sub_id and (r.json["maintenance"], r.json["resolved"]) == (False, True)
    row = ph.sub_row(eager_app, sub_id)
    assert (row.notify_maintenance, row.notify_resolved) == (False, True)


def test_unsubscribing_resets_choices_to_the_defaults(eager_app, sim, eager_api):
    client = eager_api.client
    key = ph.generate_keys(eager_app)
    sub = sim.new_subscription(key)
    client.post("/api/push/subscriptions", json={**sub.to_json(), "maintenance": False})
    assert client.delete("/api/push/subscriptions", json={"endpoint": sub.endpoint}).status_code == 204
    r = client.post("/api/push/subscriptions", json=sub.to_json())
    assert (r.json["status"], r.json["maintenance"], r.json["resolved"]) == ("active", True, True)


@pytest.mark.parametrize("field,value", [
    ("maintenance", "no"), ("maintenance", 0), ("resolved", "false"), ("resolved", 1), ("resolved", [True]),
])
def test_a_choice_that_is_not_a_boolean_is_refused_and_stores_nothing(eager_app, sim, eager_api, field, value):
    key = ph.generate_keys(eager_app)
    sub = sim.new_subscription(key)
    r = eager_api.client.post("/api/push/subscriptions", json={**sub.to_json(), field: value})
    assert r.status_code == 400
    assert r.json["error"] == f"{field} must be true or false"
    with eager_app.app_context():
        assert db.session.execute(select(func.count(Subscription.id))).scalar_one() == 0


def test_admins_see_a_subscriber_s_choices_when_they_differ_from_the_defaults(eager_app, sim, eager_api):
    key = ph.generate_keys(eager_app)
    ph.subscribe(eager_api.client, sim, key)
    ph.subscribe(eager_api.client, sim, key, maintenance=False, resolved=False)
    ph.subscribe(eager_api.client, sim, key, resolved=False)
    client = eager_app.test_client()
    r = client.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert r.status_code == 302
    page = client.get("/admin/subscriptions").get_data(as_text=True)
    assert page.count('<span class="hint choices">') == 2
    assert '<span class="hint choices">incidents only · no resolved notices</span>' in page
    assert '<span class="hint choices">no resolved notices</span>' in page


def test_a_choice_changed_between_fan_out_and_batch_still_finishes_the_event(rq_app, sim, rq_api):
    """Fan-out counts who wants the event; a visitor who opts out before their batch runs is not
    sent to, and the sweeper's resume then finishes the event with what was really targeted
    instead of leaving it "sending" forever."""
    from statuspage.worker import AppWorker

    key = ph.generate_keys(rq_app)
    changing, _ = ph.subscribe(rq_api.client, sim, key)
    staying, _ = ph.subscribe(rq_api.client, sim, key)
    incident_id = _incident(rq_api)
    ph.run_worker(rq_app)
    r = rq_api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "resolved", "body": "Fixed."})
    assert r.status_code == 201, r.json
    q = ph.queue(rq_app)
    with rq_app.app_context():
        AppWorker([q], connection=q.connection).work(burst=True, max_jobs=1, logging_level="WARNING")  # fan-out
    r = rq_api.client.post("/api/push/subscriptions", json={**changing.to_json(), "resolved": False})
    assert r.status_code == 200
    ph.run_worker(rq_app)
    assert _events(sim, changing) == ["incident.created"]
    assert _events(sim, staying) == ["incident.created", "incident.resolved"]
    [resolved] = ph.event_rows(rq_app, "incident.resolved")
    assert (resolved.state, resolved.queued_count, resolved.sent_count) == ("sending", 2, 1)

    with rq_app.app_context():  # the stall window passes; the sweeper resumes the event
        row = db.session.get(Event, resolved.id)
        row.progress_at -= timedelta(minutes=10)
        db.session.commit()
    assert rq_app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
    ph.run_worker(rq_app)
    [resolved] = ph.event_rows(rq_app, "incident.resolved")
    assert (resolved.state, resolved.queued_count, resolved.sent_count) == ("done", 1, 1)
    assert _events(sim, changing) == ["incident.created"]
