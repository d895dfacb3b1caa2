"""Trigger conditions (a minimum incident impact, a set of components) decide what is sent, and
the composer's audience preview counts the current subscribers a message would reach by the same
rules fan-out applies."""
from __future__ import annotations

import pytest

from tests.push import helpers as ph


def _component(api, name: str) -> int:
    r = api.post("/api/v1/components", {"name": name})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _incident(api, **data) -> int:
    r = api.post("/api/v1/incidents", {"name": "Slow queries", "body": "Looking.", **data})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _triggers(api) -> dict:
    return {t["event"]: t for t in api.get("/api/v1/triggers").json}


def test_minimum_impact_sends_only_incidents_at_or_above_it(eager_app, sim, eager_api):
    api = eager_api
    sub, _ = ph.subscribe(api.client, sim, ph.generate_keys(eager_app))
    r = api.put("/api/v1/triggers", {"incident.created": {"min_impact": "major"}})
    assert r.status_code == 200, r.json
    assert _triggers(api)["incident.created"]["min_impact"] == "major"
    for impact in ("none", "minor", "major", "critical"):
        _incident(api, name=f"{impact} one", impact=impact)
    assert [m.payload["title"] for m in sim.received(sub.token)] == [
        "Example Status: major one", "Example Status: critical one"]
    skipped = [e for e in ph.event_rows(eager_app, "incident.created") if e.state == "skipped"]
    assert [e.state_reason for e in skipped] == [
        "impact none is below the incident.created trigger's minimum (major)",
        "impact minor is below the incident.created trigger's minimum (major)"]
    # Other incident triggers keep their own (no) condition; clearing it sends everything again.
    assert api.put("/api/v1/triggers", {"incident.created": {"min_impact": None}}).status_code == 200
    _incident(api, name="minor again", impact="minor")
    assert sim.received(sub.token)[-1].payload["title"] == "Example Status: minor again"


def test_component_set_sends_only_events_about_those_components(eager_app, sim, eager_api):
    api = eager_api
    database, website = _component(api, "Database"), _component(api, "Website")
    sub, _ = ph.subscribe(api.client, sim, ph.generate_keys(eager_app))
    r = api.put("/api/v1/triggers", {"incident.created": {"component_ids": [database]},
                                     "component.down": {"enabled": True, "component_ids": [database]}})
    assert r.status_code == 200, r.json
    assert _triggers(api)["incident.created"]["component_ids"] == [database]
    _incident(api, name="Website only", component_ids=[website])
    _incident(api, name="Both", component_ids=[website, database])
    _incident(api, name="No component in particular")
    assert [m.payload["title"] for m in sim.received(sub.token)] == [
        "Example Status: Both", "Example Status: No component in particular"]
    [skipped] = [e for e in ph.event_rows(eager_app, "incident.created") if e.state == "skipped"]
    assert skipped.state_reason == "the incident.created trigger is limited to other components"

    assert api.patch(f"/api/v1/components/{website}", {"status": "major_outage"}).status_code == 200
    assert api.patch(f"/api/v1/components/{database}", {"status": "major_outage"}).status_code == 200
    assert [m.payload["event"] for m in sim.received(sub.token)][2:] == ["component.down"]
    assert sim.received(sub.token)[-1].payload["title"] == "Database is down"


@pytest.mark.parametrize("change, error", [
    ({"component.down": {"min_impact": "major"}}, "min_impact applies to incident events only"),
    ({"incident.created": {"min_impact": "huge"}}, "min_impact must be one of"),
    ({"incident.created": {"component_ids": [999]}}, "component 999 does not exist"),
    ({"incident.created": {"component_ids": "1"}}, "component_ids must be a list of ids"),
    ({"incident.created": {"component_ids": [0]}}, "component_ids must contain only positive integer ids"),
])
def test_bad_conditions_are_a_400_and_change_nothing(eager_api, change, error):
    r = eager_api.put("/api/v1/triggers", change)
    assert r.status_code == 400 and error in r.json["error"], r.json
    assert all(t["min_impact"] is None and t["component_ids"] == [] for t in _triggers(eager_api).values())


def test_audience_counts_the_current_subscribers_a_message_would_reach(eager_app, sim, eager_api):
    api = eager_api

    def audience(**params) -> dict:
        r = api.get("/api/v1/push/audience", query_string=params)
        assert r.status_code == 200, r.json
        return r.json

    assert audience(event="incident.created") == {"event": "incident.created", "count": 0,
                                                  "reason": "no VAPID keys configured"}
    public_key = ph.generate_keys(eager_app)
    database, website = _component(api, "Database"), _component(api, "Website")
    ph.subscribe(api.client, sim, public_key)
    ph.subscribe(api.client, sim, public_key, components=[database])
    ph.subscribe(api.client, sim, public_key, components=[website])
    gone, _ = ph.subscribe(api.client, sim, public_key)
    assert api.client.delete("/api/push/subscriptions", json={"endpoint": gone.endpoint}).status_code == 204

    assert audience(event="incident.created")["count"] == 3  # no components: everyone active
    assert audience(event="incident.created", component_ids=str(database))["count"] == 2
    assert audience(event="incident.created", component_ids=f"{database},{website}")["count"] == 3
    assert audience(event="incident.created", notify="0") == {
        "event": "incident.created", "count": 0, "reason": "the admin chose not to notify subscribers"}
    assert audience(event="component.down", component_ids=str(database))["reason"] == \
        "the component.down trigger is off"

    api.put("/api/v1/triggers", {"incident.created": {"min_impact": "major", "component_ids": [database]}})
    assert audience(event="incident.created", impact="minor", component_ids=str(database))["count"] == 0
    assert audience(event="incident.created", impact="major", component_ids=str(database))["count"] == 2
    assert audience(event="incident.created", impact="major", component_ids=str(website))["reason"] == \
        "the incident.created trigger is limited to other components"

    # What the preview promised is what fan-out does.
    _incident(api, impact="critical", component_ids=[database])
    [event] = ph.event_rows(eager_app, "incident.created")
    assert (event.state, event.sent_count) == ("done", 2)


@pytest.mark.parametrize("query", [
    {}, {"event": "incident.nope"}, {"event": "incident.created", "component_ids": "abc"},
    {"event": "incident.created", "component_ids": "1,-2"}, {"event": "incident.created", "impact": "huge"},
    {"event": "incident.created", "component_ids": ",".join(["1"] * 501)},
])
def test_bad_audience_queries_are_a_400(eager_api, query):
    r = eager_api.get("/api/v1/push/audience", query_string=query)
    assert r.status_code == 400 and r.json["error"], r.json


def test_admin_sets_conditions_in_the_trigger_table_and_the_composer_asks_the_count(eager_app, sim, eager_api):
    api = eager_api
    database = _component(api, "Database")
    ph.subscribe(api.client, sim, ph.generate_keys(eager_app), components=[database])
    browser = eager_app.test_client()
    r = browser.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert r.status_code == 302
    page = browser.get("/admin/push").get_data(as_text=True)
    assert 'name="min_impact-incident.created"' in page and 'name="min_impact-component.down"' not in page
    assert f'name="components-component.down" value="{database}"' in page
    form = {"section": "triggers"}
    for t in api.get("/api/v1/triggers").json:
        form.update({f"title-{t['event']}": t["title_template"], f"body-{t['event']}": t["body_template"],
                     f"urgency-{t['event']}": t["urgency"]})
        if t["enabled"]:
            form[f"enabled-{t['event']}"] = "1"
    form.update({"min_impact-incident.created": "critical", "components-incident.created": [str(database)]})
    assert browser.post("/admin/push", data=form).status_code == 302
    created = _triggers(api)["incident.created"]
    assert (created["min_impact"], created["component_ids"]) == ("critical", [database])
    assert "critical or worse · 1 component" in browser.get("/admin/push").get_data(as_text=True)

    composer = browser.get("/admin/incidents/new").get_data(as_text=True)
    assert 'id="preview-audience"' in composer and 'data-audience-url="/admin/push/audience"' in composer
    r = browser.get("/admin/push/audience", query_string={"event": "incident.created", "impact": "critical",
                                                          "component_ids": str(database)})
    assert r.status_code == 200 and r.json["count"] == 1
    r = browser.get("/admin/push/audience", query_string={"event": "nope"})
    assert r.status_code == 400 and "event must be one of" in r.json["error"]
