"""The anonymous visitor push API: /api/push/public-key, POST/DELETE /api/push/subscriptions and
POST /api/push/test, exactly as a browser's PushSubscription.toJSON() and sw-push.js use them.
Bad input is a 400 with a JSON error that says what is wrong, and never leaves a row behind."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from statuspage.extensions import db
from statuspage.models import Subscription
from statuspage.push.crypto import b64url_decode, b64url_encode
from tests.push import helpers as ph

EXTRA = "http://127.0.0.1:8099"  # a self-hosted push service the config allows (never contacted here)
FCM = "https://fcm.googleapis.com/fcm/send/"
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

pytestmark = pytest.mark.app_config(PUSH_EXTRA_ORIGINS=[EXTRA])


browser_subscription = ph.browser_subscription


@pytest.fixture
def keys(app) -> str:
    from statuspage.push.keys import generate_keys

    with app.app_context():
        row, _ = generate_keys()
        db.session.commit()
        return row.public_key


def _rows(app) -> list[Subscription]:
    with app.app_context():
        rows = list(db.session.execute(select(Subscription).order_by(Subscription.id)).scalars())
        for row in rows:
            row.component_ids = sorted(c.id for c in row.components)
        db.session.expunge_all()
        return rows


def _count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count(Subscription.id))).scalar_one()


# --- public key ------------------------------------------------------------------------------

def test_public_key_is_served_once_generated(app, client):
    r = client.get("/api/push/public-key")
    assert r.status_code == 503 and "not configured" in r.json["error"]

    public_key = ph.generate_keys(app)
    r = client.get("/api/push/public-key")
    assert r.status_code == 200
    assert r.json == {"publicKey": public_key}
    assert r.headers["Cache-Control"] == "no-cache"
    raw = b64url_decode(public_key)
    assert len(raw) == 65 and raw[0] == 4  # an uncompressed P-256 point: applicationServerKey


def test_public_key_from_environment_overrides_database(tmp_path, pg_database):
    from statuspage.push.crypto import generate_vapid_keypair

    private, public = generate_vapid_keypair()
    app = ph.build_app("sqlite", tmp_path, pg_database, None, VAPID_PUBLIC_KEY=public, VAPID_PRIVATE_KEY=private)
    try:
        ph.generate_keys(app)  # a stored key exists too; the environment wins
        assert app.test_client().get("/api/push/public-key").json == {"publicKey": public}
        result = app.test_cli_runner().invoke(args=["vapid", "show"])
        assert result.exit_code == 0 and result.stdout.strip() == public
    finally:
        ph.dispose(app)


# --- subscribe / resubscribe / unsubscribe ------------------------------------------------------

def test_subscribe_then_same_endpoint_updates_without_duplicate(app, client, keys):
    body = browser_subscription()
    r = client.post("/api/push/subscriptions", json=body, headers={"User-Agent": FIREFOX_UA})
    assert r.status_code == 201
    first_id = r.json["id"]
    [row] = _rows(app)
    assert (row.id, row.endpoint, row.status, row.browser, row.all_components) == (
        first_id, body["endpoint"], "active", "Firefox", True)
    assert row.p256dh == body["keys"]["p256dh"] and row.auth == body["keys"]["auth"]
    assert row.created_at is not None and row.last_active_at is not None

    # The browser re-sends (new keys after a key refresh, and now only one component).
    component = ph.Api(client, ph.create_admin_token(app)).post("/api/v1/components", json={"name": "API"}).json
    again = browser_subscription(body["endpoint"])
    again["components"] = [component["id"]]
    again["expirationTime"] = 1_900_000_000_000
    r = client.post("/api/push/subscriptions", json=again)
    assert r.status_code == 200 and r.json["id"] == first_id
    [row] = _rows(app)
    assert row.p256dh == again["keys"]["p256dh"] and row.auth == again["keys"]["auth"]
    assert (row.all_components, row.component_ids) == (False, [component["id"]])
    assert row.expiration_time is not None

    # Absent components = everything again.
    r = client.post("/api/push/subscriptions", json=browser_subscription(body["endpoint"]))
    assert r.status_code == 200
    [row] = _rows(app)
    assert (row.all_components, row.component_ids) == (True, [])


def test_old_endpoint_migrates_the_row(app, client, keys):
    old = browser_subscription()
    r = client.post("/api/push/subscriptions", json=old)
    assert r.status_code == 201
    sub_id = r.json["id"]

    new = browser_subscription()
    r = client.post("/api/push/subscriptions", json={**new, "oldEndpoint": old["endpoint"]})
    assert r.status_code == 200 and r.json["id"] == sub_id
    [row] = _rows(app)
    assert (row.endpoint, row.status, row.p256dh) == (new["endpoint"], "active", new["keys"]["p256dh"])

    # If the new endpoint was already subscribed, the old row is retired instead of duplicated.
    third = browser_subscription()
    assert client.post("/api/push/subscriptions", json=third).status_code == 201
    r = client.post("/api/push/subscriptions", json={**third, "oldEndpoint": new["endpoint"]})
    assert r.status_code == 200
    rows = {r.endpoint: r for r in _rows(app)}
    assert rows[third["endpoint"]].status == "active"
    assert (rows[new["endpoint"]].status, rows[new["endpoint"]].status_reason) == (
        "expired", "replaced by a new subscription")


def test_unsubscribe_then_resubscribe(app, client, keys):
    body = browser_subscription()
    sub_id = client.post("/api/push/subscriptions", json=body).json["id"]

    r = client.delete("/api/push/subscriptions", json={"endpoint": body["endpoint"]})
    assert r.status_code == 204 and r.data == b""
    [row] = _rows(app)
    assert (row.id, row.status) == (sub_id, "unsubscribed")

    r = client.delete("/api/push/subscriptions", json={"endpoint": FCM + "never-subscribed"})
    assert r.status_code == 404 and "no subscription" in r.json["error"]
    r = client.delete("/api/push/subscriptions", json={"endpoint": body["endpoint"], "extra": 1})
    assert r.status_code == 400 and "extra" in r.json["error"]
    r = client.delete("/api/push/subscriptions", data="{", content_type="application/json")
    assert r.status_code == 400 and "malformed JSON" in r.json["error"]

    r = client.post("/api/push/subscriptions", json=body)
    assert r.status_code == 200 and r.json["id"] == sub_id
    assert [row.status for row in _rows(app)] == ["active"]


def test_allowed_endpoints(app, client, keys):
    for endpoint in (FCM + "abc", "https://updates.push.services.mozilla.com/wpush/v2/abc",
                     "https://web.push.apple.com/QGx", "https://wns2-par02p.notify.windows.com/w/?token=x",
                     EXTRA + "/push/abc"):
        r = client.post("/api/push/subscriptions", json=browser_subscription(endpoint))
        assert r.status_code == 201, (endpoint, r.json)
    assert _count(app) == 5


def _off_curve_point() -> str:
    return b64url_encode(b"\x04" + (1).to_bytes(32, "big") + (1).to_bytes(32, "big"))


def _with(**changes) -> dict:
    body = browser_subscription()
    for name, value in changes.items():
        if name in ("p256dh", "auth"):
            body["keys"][name] = value
        else:
            body[name] = value
    return body


BAD_BODIES = [
    ("host not allowed", _with(endpoint="https://evil.example.com/push/abc"), "not a known push service"),
    ("lookalike host", _with(endpoint="https://fcm.googleapis.com.evil.example/x"), "not a known push service"),
    ("lookalike suffix", _with(endpoint="https://evilpush.apple.com/x"), "not a known push service"),
    ("http on a push service", _with(endpoint="http://fcm.googleapis.com/fcm/send/abc"), "must use https"),
    ("other port", _with(endpoint="https://fcm.googleapis.com:8443/fcm/send/a"), "default https port"),
    ("extra origin, other port", _with(endpoint="http://127.0.0.1:8098/push/a"), "must use https"),
    ("ip address", _with(endpoint="https://169.254.169.254/latest"), "not an IP address"),
    ("user info", _with(endpoint="https://u:p@fcm.googleapis.com/fcm/send/a"), "user info"),
    ("no path", _with(endpoint="https://fcm.googleapis.com/"), "path"),
    ("too long", _with(endpoint=FCM + "a" * 2100), "at most 2048"),
    ("not a string", _with(endpoint=42), "endpoint"),
    ("p256dh off curve", _with(p256dh=_off_curve_point()), "not a point on the P-256 curve"),
    ("p256dh compressed", _with(p256dh=b64url_encode(b"\x02" + bytes(32))), "65 bytes"),
    ("p256dh not base64url", _with(p256dh="***"), "base64url"),
    ("auth too short", _with(auth=b64url_encode(bytes(15))), "auth must be 16 bytes, got 15"),
    ("auth too long", _with(auth=b64url_encode(bytes(17))), "auth must be 16 bytes, got 17"),
    ("keys missing", {"endpoint": FCM + "abc"}, "keys"),
    ("unknown key field", _with(keys={"p256dh": "x", "auth": "y", "secret": "z"}), "secret"),
    ("unknown field", _with(email="me@example.com"), "unknown field(s) in subscription: email"),
    ("unknown component", _with(components=[999999]), "unknown component id(s): 999999"),
    ("components not a list", _with(components="all"), "components must be a list"),
    ("bad expirationTime", _with(expirationTime="tomorrow"), "expirationTime"),
    ("bad oldEndpoint", _with(oldEndpoint=["x"]), "oldEndpoint"),
    ("not an object", [1, 2, 3], "must be a JSON object"),
]


@pytest.mark.parametrize(("case", "body", "message"), BAD_BODIES, ids=[c[0] for c in BAD_BODIES])
def test_invalid_subscription_is_rejected_with_clear_error(app, client, keys, case, body, message):
    r = client.post("/api/push/subscriptions", json=body)
    assert r.status_code == 400, (case, r.status_code, r.data)
    assert message in r.json["error"], r.json
    assert _count(app) == 0


@pytest.mark.parametrize(("raw", "message"), [
    (b"{", "malformed JSON"),
    (b"", "request body is empty"),
    (b"{\"endpoint\": \"\xc3\x28\"}", "not UTF-8"),
    (b'{"endpoint": ', "malformed JSON"),
])
def test_malformed_body_is_rejected(app, client, keys, raw, message):
    r = client.post("/api/push/subscriptions", data=raw, content_type="application/json")
    assert r.status_code == 400 and message in r.json["error"], r.data
    assert _count(app) == 0


def test_oversized_body_is_refused_with_json_error(app, client, keys):
    body = browser_subscription()
    body["padding"] = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    r = client.post("/api/push/subscriptions", json=body)
    assert r.status_code == 413 and "too large" in r.json["error"]
    assert _count(app) == 0


def test_subscribing_is_refused_while_push_is_off(app, client, keys):
    api = ph.Api(client, ph.create_admin_token(app))
    assert api.put("/api/v1/push/settings", json={"enabled": False}).status_code == 200
    r = client.post("/api/push/subscriptions", json=browser_subscription())
    assert r.status_code == 503 and "turned off" in r.json["error"]
    assert _count(app) == 0


def test_subscribing_without_keys_is_refused(app, client):
    r = client.post("/api/push/subscriptions", json=browser_subscription())
    assert r.status_code == 503 and _count(app) == 0


@pytest.mark.app_config(PUSH_EXTRA_ORIGINS=[EXTRA], RATELIMIT_ENABLED=True, RATELIMIT_SUBSCRIBE="3 per minute")
def test_too_many_subscribe_requests_get_429(app, client, keys):
    for _ in range(3):
        assert client.post("/api/push/subscriptions", json=browser_subscription()).status_code == 201
    r = client.post("/api/push/subscriptions", json=browser_subscription())
    assert r.status_code == 429 and "too many requests" in r.json["error"]
    assert _count(app) == 3


# --- the visitor's own test push -------------------------------------------------------------------

def test_visitor_test_push_reaches_own_subscription_only(tmp_path, pg_database, sim):
    app = ph.build_app("sqlite", tmp_path, pg_database, sim)  # eager jobs: the test job runs inline
    try:
        client = app.test_client()
        public_key = ph.generate_keys(app)
        mine, sub_id = ph.subscribe(client, sim, public_key)
        other, _ = ph.subscribe(client, sim, public_key)
        r = client.post("/api/push/test", json={"endpoint": mine.endpoint})
        assert r.status_code == 202 and r.json == {"queued": True}
        [message] = sim.received()
        assert message.token == mine.token
        assert message.payload["event"] == "test" and message.payload["tag"] == "test"
        assert message.payload["title"] == "Example Status: test notification"
        assert message.payload["url"] == "https://status.example.com/"
        assert sim.received(other.token) == []

        r = client.post("/api/push/test", json={"endpoint": EXTRA + "/push/unknown"})
        assert r.status_code == 404 and "subscribe first" in r.json["error"]
        r = client.post("/api/push/test", json={"endpoint": mine.endpoint, "title": "hi"})
        assert r.status_code == 400
    finally:
        ph.dispose(app)
