"""Declarative Web Push: payload_format auto|classic|declarative, the shape each endpoint gets,
both shapes through the simulator (which decrypts them and checks the declarative one)."""
from __future__ import annotations

import json

import pytest

from statuspage.extensions import db
from statuspage.models import Event
from statuspage.push import settings as push_settings
from statuspage.push.crypto import MAX_PLAINTEXT, b64url_decode
from statuspage.push.delivery import _prepare, get_sender
from statuspage.push.formats import PayloadFormat, declarative_message, encode_for, uses_declarative
from statuspage.push.sender import OutgoingPush, PushOutcome
from statuspage.push.simulator import declarative_problem
from tests.push import helpers as ph

APPLE = "https://web.push.apple.com/QGuQyavXutnMtmBNkpI1KA"
FCM = "https://fcm.googleapis.com/fcm/send/abc"
MOZILLA = "https://updates.push.services.mozilla.com/wpush/v2/abc"
WNS = "https://wns2-par02p.notify.windows.com/w/?token=abc"


def _post_incident(api, **fields) -> int:
    body = {"name": "Database unavailable", "status": "investigating", "impact": "major",
            "body": "We are looking into it."}
    body.update(fields)
    r = api.post("/api/v1/incidents", json=body)
    assert r.status_code == 201, r.json
    return r.json["id"]


@pytest.mark.parametrize(("payload_format", "expected"), [
    ("auto", {APPLE: True, FCM: False, MOZILLA: False, WNS: False}),
    ("classic", {APPLE: False, FCM: False, MOZILLA: False, WNS: False}),
    ("declarative", {APPLE: True, FCM: True, MOZILLA: True, WNS: True}),
])
def test_auto_sends_declarative_to_apple_endpoints_only(payload_format, expected):
    assert {endpoint: uses_declarative(payload_format, endpoint) for endpoint in expected} == expected


def test_settings_choices_are_the_payload_formats():
    assert push_settings.PAYLOAD_FORMATS == tuple(PayloadFormat)


def test_declarative_message_has_the_webkit_shape_and_our_fields_under_data():
    classic = {"title": "T", "body": "B", "icon": "https://s.example/i.png", "badge": "https://s.example/b.png",
               "url": "https://s.example/incidents/3", "tag": "incident-3", "event": "incident.created",
               "timestamp": 1700000000000}
    message = declarative_message(classic)
    assert message == {
        "web_push": 8030, "mutable": True,
        "notification": {"title": "T", "body": "B", "navigate": "https://s.example/incidents/3", "lang": "en",
                         "dir": "ltr", "silent": False, "tag": "incident-3",
                         "data": {"icon": "https://s.example/i.png", "badge": "https://s.example/b.png",
                                  "url": "https://s.example/incidents/3", "event": "incident.created",
                                  "timestamp": 1700000000000}},
    }
    assert declarative_problem(message) is None
    assert declarative_message({**classic}, lang="he")["notification"]["dir"] == "rtl"


def test_a_long_declarative_message_is_cut_to_fit_on_a_character_boundary():
    classic = {"title": "Ünïcödé ☃ outage", "body": "é☃𝄞" * 2000, "url": "https://s.example/incidents/1",
               "tag": "incident-1", "event": "incident.created", "timestamp": 1}
    data = encode_for(classic, True)
    assert MAX_PLAINTEXT - 8 <= len(data) <= MAX_PLAINTEXT
    message = json.loads(data)  # valid UTF-8 JSON
    assert message["notification"]["title"] == "Ünïcödé ☃ outage"
    assert message["notification"]["body"].startswith("é☃𝄞é☃𝄞") and message["notification"]["body"].endswith("…")
    assert declarative_problem(message) is None
    assert len(encode_for(classic, False)) <= MAX_PLAINTEXT


@pytest.mark.parametrize(("message", "problem"), [
    ({"web_push": 9001, "notification": {"title": "t", "navigate": "https://a.example/"}}, "web_push"),
    ({"web_push": "8030", "notification": {"title": "t", "navigate": "https://a.example/"}}, "web_push"),
    ({"web_push": 8030}, "notification must be an object"),
    ({"web_push": 8030, "notification": {"navigate": "https://a.example/"}}, "title"),
    ({"web_push": 8030, "notification": {"title": "t"}}, "navigate"),
    ({"web_push": 8030, "notification": {"title": "t", "navigate": "/relative"}}, "navigate"),
    ({"web_push": 8030, "notification": {"title": "t", "navigate": "https://a.example/", "dir": "up"}}, "dir"),
    ({"web_push": 8030, "notification": {"title": "t", "navigate": "https://a.example/", "silent": "no"}},
     "silent"),
    ({"web_push": 8030, "mutable": 1, "notification": {"title": "t", "navigate": "https://a.example/"}},
     "mutable"),
])
def test_simulator_finds_what_is_wrong_with_a_declarative_message(message, problem):
    assert problem in (declarative_problem(message) or "")


def test_simulator_refuses_a_malformed_declarative_message(eager_app, sim):
    """A declarative message Safari could not parse is a 400 from the simulator, not a silent pass."""
    public_key = ph.generate_keys(eager_app)
    sub = sim.new_subscription(public_key)
    bad = json.dumps({"web_push": 8030, "notification": {"title": "no link"}}).encode()
    with eager_app.app_context():
        [result] = get_sender().send_all([OutgoingPush(1, sub.endpoint, b64url_decode(sub.p256dh),
                                                       b64url_decode(sub.auth), bad)])
    assert result.outcome is PushOutcome.FAILED and result.status == 400
    assert "navigate" in result.reason
    assert sim.received(sub.token) == []


def test_payload_format_is_a_push_setting_with_a_clear_400(eager_api):
    api = eager_api
    assert api.get("/api/v1/push/settings").json["payload_format"] == "auto"
    for bad in ("apple", "", 3, None):
        r = api.put("/api/v1/push/settings", json={"payload_format": bad})
        assert r.status_code == 400 and "payload_format" in r.json["error"], (bad, r.json)
    r = api.put("/api/v1/push/settings", json={"payload_format": "declarative"})
    assert r.status_code == 200 and r.json["payload_format"] == "declarative"
    assert api.get("/api/v1/push/settings").json["payload_format"] == "declarative"


def test_both_shapes_reach_the_browser_decrypted_and_valid(eager_app, sim, eager_api):
    """classic: the JSON sw-push.js always read; declarative: the WebKit shape with the incident
    link as navigate and our fields under notification.data; auto: classic for a non-Apple service."""
    api = eager_api
    public_key = ph.generate_keys(eager_app)
    sub, _ = ph.subscribe(api.client, sim, public_key)

    assert api.put("/api/v1/push/settings", json={"payload_format": "declarative"}).status_code == 200
    incident_id = _post_incident(api)
    [message] = sim.wait_for(1, token=sub.token)
    assert message.declarative
    note = message.payload["notification"]
    assert note["title"] == "Example Status: Database unavailable"
    assert note["body"] == "Investigating — We are looking into it."
    assert note["navigate"].endswith(f"/incidents/{incident_id}")
    assert (note["lang"], note["dir"], note["silent"], note["tag"]) == ("en", "ltr", False, f"incident-{incident_id}")
    assert message.payload["mutable"] is True
    assert note["data"]["event"] == "incident.created" and note["data"]["url"] == note["navigate"]

    assert api.put("/api/v1/push/settings", json={"payload_format": "classic"}).status_code == 200
    r = api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "identified", "body": "Found it."})
    assert r.status_code == 201, r.json
    second = sim.wait_for(2, token=sub.token)[1]
    assert not second.declarative
    assert second.payload["event"] == "incident.updated" and second.payload["url"].endswith(f"/incidents/{incident_id}")

    assert api.put("/api/v1/push/settings", json={"payload_format": "auto"}).status_code == 200
    api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "monitoring", "body": "Watching."})
    third = sim.wait_for(3, token=sub.token)[2]
    assert not third.declarative and third.payload["title"] == "Example Status: Database unavailable"


def test_auto_gives_an_apple_endpoint_the_declarative_bytes_and_others_the_classic(eager_app, eager_api):
    api = eager_api
    ph.generate_keys(eager_app)
    _post_incident(api)
    with eager_app.app_context():
        event = db.session.execute(db.select(Event)).scalars().first()
        prepared = _prepare(event)
        apple, fcm = json.loads(prepared.payload_for(APPLE)), json.loads(prepared.payload_for(FCM))
    assert apple["web_push"] == 8030 and declarative_problem(apple) is None
    assert "web_push" not in fcm and fcm["title"] == apple["notification"]["title"]


def test_test_push_follows_the_payload_format(eager_app, sim, eager_api):
    api = eager_api
    public_key = ph.generate_keys(eager_app)
    sub, sub_id = ph.subscribe(api.client, sim, public_key)
    api.put("/api/v1/push/settings", json={"payload_format": "declarative"})
    result = eager_app.test_cli_runner().invoke(args=["push", "test", "--subscription", str(sub_id)])
    assert result.exit_code == 0, result.output
    [message] = sim.wait_for(1, token=sub.token)
    assert message.declarative and message.payload["notification"]["data"]["event"] == "test"


def test_admin_settings_form_sets_the_payload_format(eager_app, eager_api):
    browser = eager_app.test_client()  # eager_api made admin@example.com (tests/conftest.py)
    r = browser.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert r.status_code == 302
    page = browser.get("/admin/push").get_data(as_text=True)
    assert '<option value="auto" selected>' in page and 'name="payload_format"' in page
    form = {"section": "settings", "enabled": "1", "icon_url": "", "badge_url": "", "payload_format": "declarative"}
    assert browser.post("/admin/push", data=form).status_code == 302
    assert eager_api.get("/api/v1/push/settings").json["payload_format"] == "declarative"
    assert '<option value="declarative" selected>' in browser.get("/admin/push").get_data(as_text=True)
    page = browser.post("/admin/push", data={**form, "payload_format": "apple"}).get_data(as_text=True)
    assert 'id="error-payload_format">Choose the message format from the list.' in page
    assert eager_api.get("/api/v1/push/settings").json["payload_format"] == "declarative"
