"""Bad input everywhere: a clear 400/404/413 JSON answer (or a form error), never a 500, and
nothing stored changes. Every case runs on SQLite and on PostgreSQL, which is the stricter of the
two (NUL bytes, 32-bit integer ids), against a database holding one of everything."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import func, select

from statuspage.extensions import db
from statuspage.models import Incident, Subscription
from statuspage.push.crypto import MAX_PLAINTEXT
from tests.conftest import Api
from tests.hardening_support import sim_subscription, table_snapshot

HUGE_INT = "9" * 5000  # longer than Python's int-from-string limit (4300 digits)
DEEP = "[" * 30000 + "]" * 30000  # 60 KB: under MAX_CONTENT_LENGTH, far over the recursion limit
EXTRA = "http://127.0.0.1:8099"
BAD_KEY = "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


@pytest.fixture
def world(app, api, sim):
    """One of everything, so that a bad request has something it could damage."""
    app.config["PUSH_EXTRA_ORIGINS"] = [sim.origin, EXTRA]
    good = sim_subscription(app, sim)
    group = api.post("/api/v1/component-groups", json={"name": "Core"}).get_json()
    component = api.post("/api/v1/components", json={"name": "API", "group_id": group["id"]}).get_json()
    incident = api.post("/api/v1/incidents", json={"name": "Slow", "component_ids": [component["id"]]}).get_json()
    maintenance = api.post("/api/v1/maintenances", json={
        "name": "Upgrade", "scheduled_for": "2030-01-01T00:00:00Z", "scheduled_until": "2030-01-01T02:00:00Z",
    }).get_json()
    assert api.client.post("/api/push/subscriptions", json=good).status_code == 201
    assert api.get("/api/v1/triggers").status_code == 200
    assert api.get("/api/v1/push/settings").status_code == 200
    with app.app_context():
        sub_id = db.session.execute(select(Subscription.id)).scalar_one()
        db.session.remove()
    return {"group": group["id"], "component": component["id"], "incident": incident["id"],
            "maintenance": maintenance["id"], "subscription": sub_id, "good": good}


def _raw(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _cases(w: dict) -> list[tuple[str, str, object, tuple[int, ...]]]:
    """(method, path, body (str = raw text, else JSON), allowed statuses)."""
    c, i, m, g, s = w["component"], w["incident"], w["maintenance"], w["group"], w["subscription"]
    good = w["good"]
    keys = good["keys"]
    bad = (400,)
    cases: list[tuple[str, str, object, tuple[int, ...]]] = []
    # the same broken bodies on every JSON write endpoint
    writes = [("post", "/api/v1/components"), ("patch", f"/api/v1/components/{c}"),
              ("post", "/api/v1/component-groups"), ("patch", f"/api/v1/component-groups/{g}"),
              ("post", "/api/v1/incidents"), ("post", f"/api/v1/incidents/{i}/updates"),
              ("post", "/api/v1/maintenances"), ("patch", f"/api/v1/maintenances/{m}"),
              ("post", f"/api/v1/maintenances/{m}/updates"), ("put", "/api/v1/triggers"),
              ("put", "/api/v1/push/settings"), ("post", "/api/push/subscriptions"),
              ("delete", "/api/push/subscriptions"), ("post", "/api/push/test")]
    broken = ["", "   ", "{", '{"name": "x",}', "{'name': 'x'}", "nul\x00l", '{"name": "x"} trailing',
              "null", "[]", "[1, 2]", '"a string"', "42", "true", "NaN", DEEP, HUGE_INT, '{"name": ' + HUGE_INT + "}",
              '{"name": "a\\u0000b"}', '{"name": "\\ud800"}', '{"name": "\\udfff\\ud800x"}',
              '{"\\ud800": 1}', '{"a\\u0000": 1}', '["\\ud83d"]', '{"name": ["\\u0000"]}']
    for method, path in writes:
        for body in broken:
            if body == "[]" and path == "/api/v1/triggers":
                continue  # the list form of PUT /triggers: an empty list is a valid "no changes"
            cases.append((method, path, body, bad))
        cases.append((method, path, b"\xff\xfe\x00{", bad))
        cases.append((method, path, '{"unknown_field_xyz": 1}', bad))
    cases += [
        # components and groups
        ("post", "/api/v1/components", {"name": 1}, bad),
        ("post", "/api/v1/components", {"name": ""}, bad),
        ("post", "/api/v1/components", {"name": "x" * 201}, bad),
        ("post", "/api/v1/components", {"name": "bell\x07"}, bad),
        ("post", "/api/v1/components", {"name": "x", "status": "broken"}, bad),
        ("post", "/api/v1/components", {"name": "x", "group_id": 999}, bad),
        ("post", "/api/v1/components", {"name": "x", "group_id": 2**31}, bad),
        ("post", "/api/v1/components", {"name": "x", "group_id": 2**63}, bad),
        ("post", "/api/v1/components", {"name": "x", "group_id": -1}, bad),
        ("post", "/api/v1/components", {"name": "x", "group_id": "1"}, bad),
        ("post", "/api/v1/components", {"name": "x", "position": 10**30}, bad),
        ("post", "/api/v1/components", {"name": "x", "position": 1.5}, bad),
        ("post", "/api/v1/components", '{"name": "x", "position": 1e400}', bad),
        ("post", "/api/v1/components", {"name": "x", "showcase": "yes"}, bad),
        ("patch", f"/api/v1/components/{c}", {"status": "nope"}, bad),
        ("patch", f"/api/v1/components/{c}", {"name": None}, bad),
        ("patch", f"/api/v1/components/{c}", {"position": -1}, bad),
        ("patch", "/api/v1/components/2147483648", {"name": "x"}, (404,)),
        ("patch", "/api/v1/components/99999999999999999999999", {"name": "x"}, (404,)),
        ("patch", "/api/v1/components/0", {"name": "x"}, (404,)),
        ("patch", "/api/v1/components/-1", {"name": "x"}, (404,)),
        ("patch", "/api/v1/components/abc", {"name": "x"}, (404,)),
        ("patch", "/api/v1/components/1e3", {"name": "x"}, (404,)),
        ("delete", "/api/v1/components/2147483647", None, (404,)),
        ("delete", "/api/v1/component-groups/2147483648", None, (404,)),
        ("post", "/api/v1/component-groups", {"name": "x", "position": "1"}, bad),
        # incidents
        ("post", "/api/v1/incidents", {}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "status": "fixed"}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "impact": ["major"]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "body": "b" * 20001}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "notify": "yes"}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "components": ["1"]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "components": {"abc": "major_outage"}}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "components": {"999": "major_outage"}}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "components": {str(2**31): "major_outage"}}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "components": {str(c): "on_fire"}}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": [999]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": [0]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": [2**31]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": [2**64]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": [True]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": [1.0]}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": list(range(1, 600))}, bad),
        ("post", "/api/v1/incidents", {"name": "x", "component_ids": "1,2"}, bad),
        ("post", f"/api/v1/incidents/{i}/updates", {}, bad),
        ("post", f"/api/v1/incidents/{i}/updates", {"status": "completed"}, bad),  # a maintenance status
        ("post", f"/api/v1/incidents/{i}/updates", {"body": 5}, bad),
        ("post", f"/api/v1/incidents/{m}/updates", {"body": "wrong kind"}, (404,)),
        ("post", "/api/v1/incidents/2147483648/updates", {"body": "x"}, (404,)),
        ("post", "/api/v1/incidents/999/updates", {"body": "x"}, (404,)),
        # maintenances: timestamps
        *[("post", "/api/v1/maintenances", {"name": "m", "scheduled_for": when,
                                            "scheduled_until": "2031-01-01T00:00:00Z"}, bad)
          for when in ("2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z", "yesterday", "", "2024-01-01T25:00:00Z",
                       "99999-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00Z",
                       "9999-12-31T23:59:59-14:00", "2024-01-01T00:00:00+99:00", 1700000000, None, ["2030"],
                       "2030-01-01T00:00:00Z\x00", "２０３０-01-01T00:00:00Z")],
        ("post", "/api/v1/maintenances", {"name": "m", "scheduled_for": "2031-01-01T00:00:00Z",
                                          "scheduled_until": "2030-01-01T00:00:00Z"}, bad),
        ("patch", f"/api/v1/maintenances/{m}", {"scheduled_for": "not a date"}, bad),
        ("patch", f"/api/v1/maintenances/{i}", {"name": "wrong kind"}, (404,)),
        ("post", f"/api/v1/maintenances/{m}/updates", {"status": "resolved"}, bad),  # an incident status
        # triggers: placeholders that don't exist, str.format tricks, wrong types
        *[("put", "/api/v1/triggers", {"incident.created": {"title_template": t}}, bad)
          for t in ("{nope}", "{site_name.__class__}", "{site_name!r}", "{0}", "{}", "{incident_name:>99999}",
                    "{__import__('os')}", "", "x" * 301, 5, None)],
        ("put", "/api/v1/triggers", {"incident.created": {"body_template": "{update_body[0]}"}}, bad),
        ("put", "/api/v1/triggers", {"incident.created": {"ttl": -1}}, bad),
        ("put", "/api/v1/triggers", {"incident.created": {"ttl": 2**63}}, bad),
        ("put", "/api/v1/triggers", {"incident.created": {"urgency": "urgent"}}, bad),
        ("put", "/api/v1/triggers", {"incident.created": {"enabled": 1}}, bad),
        ("put", "/api/v1/triggers", {"incident.created": {"colour": "red"}}, bad),
        ("put", "/api/v1/triggers", {"incident.created": []}, bad),
        ("put", "/api/v1/triggers", {"incident.exploded": {"enabled": True}}, bad),
        ("put", "/api/v1/triggers", [{"event": "nope"}], bad),
        ("put", "/api/v1/triggers", [{"enabled": True}], bad),
        # a valid change followed by an invalid one: all or nothing
        ("put", "/api/v1/triggers", {"incident.created": {"enabled": False},
                                     "incident.updated": {"title_template": "{bad}"}}, bad),
        # push settings
        *[("put", "/api/v1/push/settings", {"icon_url": u}, bad)
          for u in ("javascript:alert(1)", "data:image/png;base64,AAAA", "//evil.example/x.png",
                    "http://evil.example/x.png", "ftp://x/y.png", "x" * 600, 5)],
        ("put", "/api/v1/push/settings", {"debounce_seconds": -1}, bad),
        ("put", "/api/v1/push/settings", {"debounce_seconds": 2**40}, bad),
        ("put", "/api/v1/push/settings", {"enabled": "no"}, bad),
        # admin listings
        *[("get", f"/api/v1/{what}?{q}", None, bad)
          for what in ("incidents", "maintenances", "events", "subscriptions")
          for q in ("limit=0", "limit=201", "limit=abc", "offset=-1", "offset=99999999999", "limit=%00", "limit=1e2")],
        ("get", "/api/v1/subscriptions?status=bogus", None, bad),
        ("post", "/api/v1/subscriptions/2147483648/test", None, (404,)),
        ("post", "/api/v1/subscriptions/999/test", None, (404,)),
        ("get", "/api/v1/nothing-here", None, (404,)),
        ("delete", "/api/v1/incidents", None, (405,)),
        # the visitor push API
        ("post", "/api/push/subscriptions", {**good, "keys": None}, bad),
        ("post", "/api/push/subscriptions", {**good, "keys": "p256dh"}, bad),
        ("post", "/api/push/subscriptions", {**good, "keys": {"p256dh": keys["p256dh"]}}, bad),
        ("post", "/api/push/subscriptions", {**good, "keys": {**keys, "extra": "x"}}, bad),
        ("post", "/api/push/subscriptions", {**good, "keys": {**keys, "p256dh": BAD_KEY}}, bad),  # not on the curve
        ("post", "/api/push/subscriptions", {**good, "keys": {**keys, "p256dh": "!!!"}}, bad),
        ("post", "/api/push/subscriptions", {**good, "keys": {**keys, "p256dh": "A" * 5000}}, bad),
        ("post", "/api/push/subscriptions", {**good, "keys": {**keys, "auth": "AAAA"}}, bad),
        ("post", "/api/push/subscriptions", {**good, "keys": {**keys, "auth": 16}}, bad),
        ("post", "/api/push/subscriptions", {**good, "components": [999]}, bad),
        ("post", "/api/push/subscriptions", {**good, "components": [2**31]}, bad),
        ("post", "/api/push/subscriptions", {**good, "components": [2**70]}, bad),
        ("post", "/api/push/subscriptions", {**good, "components": [-1]}, bad),
        ("post", "/api/push/subscriptions", {**good, "components": "all"}, bad),
        ("post", "/api/push/subscriptions", {**good, "components": [[1]]}, bad),
        ("post", "/api/push/subscriptions", {**good, "components": list(range(1, 502))}, bad),
        ("post", "/api/push/subscriptions", {**good, "expirationTime": "tomorrow"}, bad),
        ("post", "/api/push/subscriptions", {**good, "expirationTime": 1e300}, bad),
        ("post", "/api/push/subscriptions", {**good, "expirationTime": -1}, bad),
        ("post", "/api/push/subscriptions", {**good, "expirationTime": True}, bad),
        ("post", "/api/push/subscriptions", {**good, "expirationTime": 2**53}, bad),
        ("post", "/api/push/subscriptions", {**good, "oldEndpoint": 5}, bad),
        ("post", "/api/push/subscriptions", {**good, "oldEndpoint": "x" * 3000}, bad),
        ("post", "/api/push/subscriptions", {**good, "endpoint": None}, bad),
        ("delete", "/api/push/subscriptions", {}, bad),
        ("delete", "/api/push/subscriptions", {"endpoint": 5}, bad),
        ("delete", "/api/push/subscriptions", {"endpoint": good["endpoint"], "keys": keys}, bad),
        ("delete", "/api/push/subscriptions", {"endpoint": f"{EXTRA}/push/unknown"}, (404,)),
        ("delete", "/api/push/subscriptions", {"endpoint": "x" * 3000}, bad),
        ("post", "/api/push/test", {}, bad),
        ("post", "/api/push/test", {"endpoint": f"{EXTRA}/push/unknown"}, (404,)),
        ("post", "/api/push/test", {"endpoint": good["endpoint"], "title": "spoofed"}, bad),
        ("get", "/api/push/nothing", None, (404,)),
        ("put", "/api/push/subscriptions", good, (405,)),
        ("get", "/api/v2/nothing.json", None, (404,)),
    ]
    assert s  # the world has a subscription the cases above must not touch
    return cases


def _send(client, headers, method, path, body):
    if body is None:
        return getattr(client, method)(path, headers=headers)
    data = body if isinstance(body, bytes) else _raw(body).encode("utf-8", "surrogatepass")
    return getattr(client, method)(path, data=data, content_type="application/json", headers=headers)


def test_bad_requests_get_clear_json_errors_and_change_nothing(app, api, world):
    before = table_snapshot(app)
    problems = []
    cases = _cases(world)
    for method, path, body, allowed in cases:
        response = _send(api.client, api.headers, method, path, body)
        data = response.get_json(silent=True)
        if response.status_code not in allowed or not isinstance(data, dict) or not data.get("error"):
            problems.append((method, path, _raw(body)[:80] if body is not None else None, response.status_code,
                             response.get_data(as_text=True)[:200]))
    assert not problems, f"{len(problems)} of {len(cases)} bad requests were not answered with a clean 4xx:\n" + \
        "\n".join(map(repr, problems))
    assert table_snapshot(app) == before


@pytest.mark.parametrize("path", ["/api/push/subscriptions", "/api/v1/incidents", "/api/v1/components",
                                  "/api/v1/triggers", "/api/push/test"])
def test_body_over_max_content_length_is_413_json(app, api, world, path):
    before = table_snapshot(app)
    limit = app.config["MAX_CONTENT_LENGTH"]
    body = json.dumps({"name": "x" * (limit + 10)})
    method = "put" if path.endswith("triggers") else "post"
    response = getattr(api.client, method)(path, data=body, content_type="application/json", headers=api.headers)
    assert response.status_code == 413
    assert response.get_json() == {"error": "request body too large"}
    assert table_snapshot(app) == before


def test_chunked_body_without_length_is_still_limited(app, api, world):
    # No Content-Length: werkzeug stops reading at MAX_CONTENT_LENGTH instead of buffering it all.
    limit = app.config["MAX_CONTENT_LENGTH"]
    stream = io.BytesIO(b'{"name": "' + b"x" * (limit + 10) + b'"}')
    response = api.client.post("/api/v1/components", input_stream=stream, headers={
        **api.headers, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True})  # what gunicorn sets for a chunked body
    assert response.status_code == 413, response.get_json()
    assert "error" in response.get_json()


def test_unauthenticated_admin_api_is_401_json_and_changes_nothing(app, client, world):
    before = table_snapshot(app)
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer sp_nope"},
                    {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer " + "sp_" + "x" * 5000},
                    {"Authorization": "Bearer sp_\x00"}):
        for method, path in (("post", "/api/v1/incidents"), ("get", "/api/v1/subscriptions"),
                             ("put", "/api/v1/triggers"), ("delete", f"/api/v1/components/{world['component']}")):
            response = getattr(client, method)(path, json={"name": "x"}, headers=headers)
            assert response.status_code == 401, (headers, path)
            assert "error" in response.get_json()
    assert table_snapshot(app) == before


def test_duplicate_subscribe_updates_the_one_row(app, client, world):
    good = world["good"]
    assert client.post("/api/push/subscriptions", json={**good, "components": [world["component"]]}).status_code == 200
    again = client.post("/api/push/subscriptions", json=good)
    assert again.status_code == 200 and again.get_json()["id"] == world["subscription"]
    with app.app_context():
        assert db.session.execute(select(func.count(Subscription.id))).scalar_one() == 1
        assert db.session.get(Subscription, world["subscription"]).all_components is True


def test_unsubscribe_twice_then_unknown(app, client, world):
    endpoint = world["good"]["endpoint"]
    assert client.delete("/api/push/subscriptions", json={"endpoint": endpoint}).status_code == 204
    assert client.delete("/api/push/subscriptions", json={"endpoint": endpoint}).status_code == 204  # idempotent
    response = client.delete("/api/push/subscriptions", json={"endpoint": endpoint + "-other"})
    assert response.status_code == 404 and response.get_json()["error"]


# --- unicode: stored and shown exactly, truncated on a character boundary --------------------------

NAMES = [
    "Datenbank-Ausfall: Größe ÄÖÜ ß",
    "数据库故障 🔥🚒 (𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱𠝹)",  # emoji and 4-byte CJK extension B characters
    "عطل في قاعدة البيانات \u202eevil\u202c",  # RTL text and an RTL override
    "e\u0301 combining, zero\u200bwidth, 👩‍👩‍👧‍👦 family",
    "<script>alert('x')</script> & \"quotes\" 'apostrophes'",
]


@pytest.mark.parametrize("name", NAMES)
def test_unicode_names_are_stored_and_rendered_exactly(app, api, world, name):
    created = api.post("/api/v1/incidents", json={"name": name, "body": f"**{name}**"})
    assert created.status_code == 201
    incident_id = created.get_json()["id"]
    assert api.get(f"/api/v1/incidents/{incident_id}").get_json()["name"] == name
    summary = api.client.get("/api/v2/incidents.json").get_json()
    assert name in [i["name"] for i in summary["incidents"]]
    from markupsafe import escape

    for path in ("/", f"/incidents/{incident_id}", "/history"):
        page = api.client.get(path)
        assert page.status_code == 200
        assert str(escape(name)) in page.get_data(as_text=True), path
    feed = api.client.get("/feed.atom")
    root = ET.fromstring(feed.data)  # still well-formed XML
    titles = [e.text for e in root.iter("{http://www.w3.org/2005/Atom}title")]
    assert name in titles


def test_push_payload_keeps_unicode_and_truncates_on_a_character_boundary(app, api, world, sim):
    sim.reset()
    body = "🔥" * 3000 + "𠜎" * 10  # 12,040 bytes of 4-byte characters: far over the 4 KB limit
    name = "Ausfall 数据库 🔥 عطل"
    assert api.post("/api/v1/incidents", json={"name": name, "body": body}).status_code == 201
    message = sim.wait_for(1)[0]
    assert len(message.plaintext) <= MAX_PLAINTEXT
    payload = json.loads(message.plaintext.decode("utf-8"))  # strict UTF-8: no cut character
    assert name in payload["title"]
    assert payload["body"].endswith("…")
    assert set(payload["body"].split(" — ")[-1].rstrip("…")) == {"🔥"}
    assert len(payload["body"]) > 500


def test_control_characters_are_refused_but_newlines_and_tabs_kept(app, api, world):
    assert api.post("/api/v1/incidents", json={"name": "bell\x07"}).status_code == 400
    assert api.post("/api/v1/incidents", json={"name": "esc\x1b[31m"}).status_code == 400
    ok = api.post("/api/v1/incidents", json={"name": "tabs\tok", "body": "line 1\r\nline 2\n\n- item"})
    assert ok.status_code == 201
    root = ET.fromstring(api.client.get("/feed.atom").data)
    assert root is not None


# --- admin forms: errors shown on the form, nothing stored --------------------------------------

@pytest.fixture
def admin_client(app, world):
    client = app.test_client()
    response = client.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert response.status_code in (302, 303)
    return client


def test_admin_forms_show_errors_and_store_nothing(app, admin_client, world):
    before = table_snapshot(app)
    c, i = world["component"], world["incident"]
    posts = [
        ("/admin/components", {"name": ""}),
        ("/admin/components", {"name": "x" * 500}),
        ("/admin/components", {"name": "x\x00"}),
        ("/admin/components", {"name": "x", "status": "on_fire"}),
        ("/admin/components", {"name": "x", "group_id": "99999999999"}),
        ("/admin/components", {"name": "x", "position": "999999999999"}),
        (f"/admin/components/{c}", {"name": "", "status": "operational"}),
        ("/admin/groups", {"name": ""}),
        ("/admin/incidents/new", {"name": "", "status": "investigating"}),
        ("/admin/incidents/new", {"name": "x", "status": "exploded"}),
        ("/admin/incidents/new", {"name": "x", "affected": ["99999"], "status-99999": "major_outage"}),
        ("/admin/incidents/new", {"name": "x", "affected": ["abc"]}),
        ("/admin/incidents/new", {"name": "x", "affected": [str(c)], f"status-{c}": "on_fire"}),
        (f"/admin/incidents/{i}", {"status": "nope", "body": "x"}),
        (f"/admin/incidents/{i}", {"status": "investigating", "body": ""}),
        ("/admin/maintenances/new", {"name": "m", "scheduled_for": "garbage", "scheduled_until": "2030-01-01T01:00"}),
        ("/admin/maintenances/new", {"name": "m", "scheduled_for": "0001-01-01T00:00",
                                     "scheduled_until": "0001-01-01T01:00"}),
        ("/admin/maintenances/new", {"name": "m", "scheduled_for": "2030-01-02T00:00",
                                     "scheduled_until": "2030-01-01T00:00"}),
        ("/admin/push", {"section": "settings", "icon_url": "javascript:alert(1)", "enabled": "on"}),
        ("/admin/push", {"section": "triggers", "title-incident.created": "{nope}"}),
    ]
    problems = []
    for path, form in posts:
        response = admin_client.post(path, data=form)
        if response.status_code >= 500:
            problems.append((path, form, response.status_code))
            continue
        page = admin_client.get(response.headers["Location"]) if response.status_code in (302, 303) else response
        text = page.get_data(as_text=True)
        if 'class="flash flash-error"' not in text:
            problems.append((path, form, "no error shown"))
    assert problems == []
    assert table_snapshot(app) == before
    for path in ("/admin/components/2147483648/delete", "/admin/incidents/99999999999", "/admin/groups/0/delete"):
        assert admin_client.post(path).status_code == 404


def test_login_form_with_hostile_input_never_500s(app, client, world):
    before = table_snapshot(app)
    for email, password in (("a\x00@b.c", "x"), ("admin@example.com", "x\x00"), ("x" * 10000, "y" * 10000),
                            ("", ""), ("admin@example.com' OR 1=1 --", "x")):
        response = client.post("/admin/login", data={"email": email, "password": password})
        assert response.status_code == 401, (email[:20], response.status_code)
    for raw in ("email=%ED%A0%80&password=x", "email=%FF%FE&password=%C0%AF", "email&password", "%%%"):
        response = client.post("/admin/login", data=raw, content_type="application/x-www-form-urlencoded")
        assert response.status_code == 401, raw
    assert table_snapshot(app) == before


def test_public_pages_with_hostile_urls_never_500(app, client, world):
    for path in ("/incidents/99999999999999999999", "/incidents/2147483648", "/incidents/0", "/incidents/-1",
                 "/incidents/1%00", "/history?page=%00", "/history?page=999999999999", "/history?page=-1",
                 "/feed.atom?x=%00", "/static/../app.py", "/static/%2e%2e/app.py", "/api/v2/incidents.json?limit=x",
                 "/admin/login?next=//evil.example", "/sw-push.js?v=%ff"):
        response = client.get(path)
        assert response.status_code < 500, path
    assert client.get("/incidents/2147483648").status_code == 404
    with app.app_context():
        assert db.session.execute(select(func.count(Incident.id))).scalar_one() == 2


def test_open_redirect_after_login_is_refused(app, client, world):
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
                   "///evil.example", "http:evil.example"):
        fresh = app.test_client()
        response = fresh.post(f"/admin/login?next={target}",
                              data={"email": "admin@example.com", "password": "correct horse battery"})
        assert response.status_code in (302, 303)
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//") and "evil" not in location, target


def test_api_helper_is_bearer(app, client):
    # guard for the helper above: the Api class sends the token the tests rely on
    assert Api(client, "sp_x").headers["Authorization"] == "Bearer sp_x"
