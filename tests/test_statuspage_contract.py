"""Contract tests: every /api/v2 endpoint against real Statuspage responses recorded in public
repositories (tests/fixtures/statuspage/, provenance in PROVENANCE.md). Same keys per object,
value types upstream uses (null where upstream writes null), the same timestamp and id formats
and enums, and the recorded top-level status replayed from the recorded component statuses."""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest

from statuspage.components import overall_status

FIXTURES = Path(__file__).parent / "fixtures" / "statuspage"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
TIME_KEYS = {"created_at", "updated_at", "monitoring_at", "resolved_at", "started_at", "display_at",
             "scheduled_for", "scheduled_until"}
INDICATORS = {"none", "minor", "major", "critical", "maintenance"}
DESCRIPTIONS = {"All Systems Operational", "Major System Outage", "Partial System Outage", "Minor Service Outage",
                "Degraded System Service", "Partially Degraded Service", "Service Under Maintenance"}
COMPONENT_STATUSES = {"operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage"}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
MAINTENANCE_STATUSES = {"scheduled", "in_progress", "verifying", "completed"}
IMPACTS = {"none", "minor", "major", "critical", "maintenance"}


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


RECORDED = {
    "github_outage": load("github-summary-2020-04-02-outage.json"),
    "github_operational": load("github-summary-2019-12-30-operational.json"),
    "github_incidents": load("github-incidents-2024-09-17.json"),
    "github_components": load("github-components-2024-09-17.json"),
    "huobi": load("huobi-summary-2020-02-11.json"),
    **load("status-examples.json"),
}


class Shapes:
    """Objects by kind (page, component, incident, update, affected, maintenance, status), walked
    out of a response the way a client reads them."""

    def __init__(self, responses: list[dict]):
        self.kinds: dict[str, list[dict]] = defaultdict(list)
        for response in responses:
            self._walk(response)

    def _walk(self, response: dict) -> None:
        if "page" in response:
            self.kinds["page"].append(response["page"])
        if "status" in response:
            self.kinds["status"].append(response["status"])
        for c in response.get("components", []):
            self.kinds["group" if c.get("group") else "component"].append(c)
        for i in response.get("incidents", []):
            self._incident("incident", i)
        for m in response.get("scheduled_maintenances", []):
            self._incident("maintenance", m)

    def _incident(self, kind: str, item: dict) -> None:
        self.kinds[kind].append(item)
        for c in item.get("components", []):
            self.kinds["component"].append(c)
        for u in item.get("incident_updates", []):
            self.kinds["update"].append(u)
            for a in u.get("affected_components") or []:
                self.kinds["affected"].append(a)

    def keys(self, kind: str) -> set[str]:
        return set().union(*(set(o) for o in self.kinds[kind])) if self.kinds[kind] else set()

    def types(self, kind: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for o in self.kinds[kind]:
            for key, value in o.items():
                found[key].add(type(value).__name__)
        return found


UPSTREAM = Shapes(list(RECORDED.values()))
NEWEST = Shapes([RECORDED["github_incidents"], RECORDED["github_components"]])  # 2024: the current field set


def _timestamps_match(data) -> list[str]:
    bad = []
    if isinstance(data, dict):
        for key, value in data.items():
            if key in TIME_KEYS and value is not None and not STAMP.match(value):
                bad.append(f"{key}={value}")
            elif isinstance(value, dict | list):
                bad.extend(_timestamps_match(value))
    elif isinstance(data, list):
        for item in data:
            bad.extend(_timestamps_match(item))
    return bad


def test_the_recordings_themselves_follow_the_contract_checked_below():
    for name, data in RECORDED.items():
        assert _timestamps_match(data) == [], name
    assert {s["indicator"] for s in UPSTREAM.kinds["status"]} <= INDICATORS
    assert {s["description"] for s in UPSTREAM.kinds["status"]} <= DESCRIPTIONS
    assert all(isinstance(c["id"], str) for c in UPSTREAM.kinds["component"])


@pytest.mark.parametrize("name", ["github_outage", "github_operational"])
def test_recorded_top_level_status_replays_from_the_recorded_components(name):
    """The recordings hold every component of the page: the status Statuspage showed follows."""
    data = RECORDED[name]
    statuses = [c["status"] for c in data["components"] if not c["group"]]
    assert overall_status(statuses, [i["impact"] for i in data["incidents"]]) == (
        data["status"]["indicator"], data["status"]["description"])


def test_a_page_set_up_like_the_recorded_outage_shows_what_statuspage_showed(client, api):
    recorded = RECORDED["github_outage"]
    for c in recorded["components"]:
        assert api.post("/api/v1/components", {"name": c["name"], "status": c["status"]}).status_code == 201
    api.post("/api/v1/incidents", {"name": recorded["incidents"][0]["name"], "impact": "major"})
    assert client.get("/api/v2/status.json").json["status"] == recorded["status"]


@pytest.fixture
def populated(client, api):
    """A page with a group, grouped and ungrouped components, incidents with and without
    components (open, resolved, with a postmortem) and maintenances in every state."""
    group = api.post("/api/v1/component-groups", {"name": "Core"}).json["id"]
    web = api.post("/api/v1/components", {"name": "Web", "group_id": group, "description": "Site"}).json["id"]
    dbc = api.post("/api/v1/components", {"name": "DB"}).json["id"]
    api.post("/api/v1/incidents", {"name": "Errors", "impact": "major", "body": "Looking",
                                   "components": {str(web): "partial_outage"}, "component_ids": [dbc]})
    api.post("/api/v1/incidents", {"name": "Vague", "impact": "minor"})
    done = api.post("/api/v1/incidents", {"name": "Done", "status": "resolved", "component_ids": [dbc]}).json["id"]
    api.put(f"/api/v1/incidents/{done}/postmortem", {"body": "Why it broke"})
    api.post("/api/v1/maintenances", {"name": "Later", "scheduled_for": "2099-01-01T10:00:00Z",
                                      "scheduled_until": "2099-01-01T11:00:00Z", "component_ids": [dbc]})
    api.post("/api/v1/maintenances", {"name": "Now", "scheduled_for": "2020-01-01T10:00:00Z",
                                      "scheduled_until": "2099-01-01T11:00:00Z", "status": "in_progress",
                                      "component_ids": [dbc], "body": "Working"})
    return client


ENDPOINTS = {
    "summary.json": {"page", "components", "incidents", "scheduled_maintenances", "status"},
    "status.json": {"page", "status"},
    "components.json": {"page", "components"},
    "incidents.json": {"page", "incidents"},
    "incidents/unresolved.json": {"page", "incidents"},
    "scheduled-maintenances.json": {"page", "scheduled_maintenances"},
    "scheduled-maintenances/upcoming.json": {"page", "scheduled_maintenances"},
    "scheduled-maintenances/active.json": {"page", "scheduled_maintenances"},
}


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_each_v2_endpoint_has_the_recorded_shape(populated, endpoint):
    r = populated.get(f"/api/v2/{endpoint}")
    assert r.status_code == 200 and r.mimetype == "application/json"
    data = r.json
    assert set(data) == ENDPOINTS[endpoint]
    ours = Shapes([data])
    assert ours.kinds["page"] and ours.keys("page") == UPSTREAM.keys("page")
    assert _timestamps_match(data) == []
    assert all(ts.endswith("Z") for ts in re.findall(r'"(\d{4}-\d\d-\d\dT[^"]+)"', json.dumps(data)))
    if "status" in data:
        assert set(data["status"]) == {"indicator", "description"}
        assert data["status"]["indicator"] in INDICATORS and data["status"]["description"] in DESCRIPTIONS
    # Each kind of object: the keys of the newest recordings (maintenances: Huobi's plus the
    # reminder_intervals every incident object carries since), types upstream uses.
    expected_keys = {
        "component": NEWEST.keys("component"),
        "incident": NEWEST.keys("incident"),
        "update": NEWEST.keys("update"),
        "affected": NEWEST.keys("affected"),
        "maintenance": UPSTREAM.keys("maintenance") | {"reminder_intervals"},
    }
    for kind, keys in expected_keys.items():
        for obj in ours.kinds[kind]:
            assert set(obj) == keys, (kind, set(obj) ^ keys)
            upstream_types = UPSTREAM.types(kind if kind != "maintenance" else "incident")
            upstream_types.update({k: v for k, v in UPSTREAM.types("maintenance").items() if k.startswith("sched")})
            for key, value in obj.items():
                allowed = upstream_types[key] | ({"str"} if key == "start_date" else set())
                assert type(value).__name__ in allowed, (kind, key, value, allowed)
            if "id" in obj:
                assert isinstance(obj["id"], str)
    for c in ours.kinds["component"] + ours.kinds["group"]:
        assert c["status"] in COMPONENT_STATUSES
    for i in ours.kinds["incident"]:
        assert i["status"] in INCIDENT_STATUSES and i["impact"] in IMPACTS
    for m in ours.kinds["maintenance"]:
        assert m["status"] in MAINTENANCE_STATUSES and m["impact"] == "maintenance"
    for a in ours.kinds["affected"]:
        assert a["old_status"] in COMPONENT_STATUSES and a["new_status"] in COMPONENT_STATUSES


def test_the_populated_page_covers_every_kind_of_object(populated):
    data = populated.get("/api/v2/summary.json").json
    ours = Shapes([data, populated.get("/api/v2/incidents.json").json,
                   populated.get("/api/v2/scheduled-maintenances.json").json])
    for kind in ("page", "status", "component", "group", "incident", "update", "affected", "maintenance"):
        assert ours.kinds[kind], kind
    statuses = {i["name"]: i["status"] for i in ours.kinds["incident"]}
    assert statuses["Done"] == "postmortem"
    assert {m["status"] for m in ours.kinds["maintenance"]} == {"scheduled", "in_progress"}
    group = ours.kinds["group"][0]
    assert set(group) == NEWEST.keys("component") | {"components"} and group["components"]
