"""SSRF: only the known push services and PUSH_EXTRA_ORIGINS are ever contacted.

The allow-list (`endpoint_problem`) is checked when a visitor subscribes (400, nothing stored)
and again by the sender right before every request, so a row that got into the database some
other way (an old allow-list, a restored dump, a hand edit) is never contacted either. Redirects
are never followed. "Never contacted" is proven with a real listening socket that records every
connection made to it.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from statuspage.extensions import db
from statuspage.models import Delivery, Event, Subscription
from statuspage.push.simulator import PushSimulator
from statuspage.push.subscriptions import endpoint_problem
from tests.conftest import make_app
from tests.hardening_support import (
    ConnectionRecorder,
    Redirector,
    sim_subscription,
    table_snapshot,
    with_keys,
)

EXTRA = "http://127.0.0.1:8099"


ALLOWED = [
    "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91bH",
    "https://FCM.GOOGLEAPIS.COM/fcm/send/abc",
    "https://fcm.googleapis.com:443/fcm/send/abc",
    "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
    "https://web.push.apple.com/QOx5nbB5",
    "https://api.push.apple.com/3/device/abc",
    "https://a.b.push.apple.com/x",
    "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAD",
    f"{EXTRA}/push/abc",
    "http://127.0.0.1:08099/push/abc",  # the same origin once the port is normalized
]

# (endpoint, words the 400 message must contain)
REJECTED = [
    # wrong scheme
    ("http://fcm.googleapis.com/fcm/send/abc", "https"),
    ("ftp://fcm.googleapis.com/x", "http(s)"),
    ("file:///etc/passwd", "http(s)"),
    ("javascript:alert(1)//fcm.googleapis.com/x", "http(s)"),
    ("data:text/plain,fcm.googleapis.com", "http(s)"),
    ("//fcm.googleapis.com/fcm/send/abc", "http(s)"),
    ("https:/fcm.googleapis.com/x", "http(s)"),
    ("https:///fcm.googleapis.com/x", "http(s)"),
    # IP literals in every spelling (all of these reach 127.0.0.1 or the metadata service)
    ("https://127.0.0.1/x", "IP address"),
    ("https://10.0.0.1/x", "IP address"),
    ("https://169.254.169.254/latest/meta-data/", "IP address"),
    ("https://[::1]/x", "IP address"),
    ("https://[::ffff:127.0.0.1]/x", "IP address"),
    ("https://[fd00:ec2::254]/latest/meta-data/", "IP address"),
    ("https://2130706433/x", "not a known push service"),
    ("https://0x7f000001/x", "not a known push service"),
    ("https://0x7f.1/x", "not a known push service"),
    ("https://0177.0.0.1/x", "not a known push service"),
    ("https://127.1/x", "not a known push service"),
    ("http://2130706433/x", "https"),
    ("http://127.0.0.1/x", "https"),
    # hostnames that are not push services
    ("https://localhost/x", "not a known push service"),
    ("https://localhost.localdomain/x", "not a known push service"),
    ("https://metadata.google.internal/computeMetadata/v1/", "not a known push service"),
    ("https://metadata/computeMetadata/v1/", "not a known push service"),
    ("https://evil.com/fcm/send/abc", "not a known push service"),
    # PUSH_EXTRA_ORIGINS is exact: other hosts, ports and schemes on the same machine are not in it
    ("http://127.0.0.1:8098/push/abc", "https"),
    ("http://localhost:8099/push/abc", "https"),
    ("https://127.0.0.1:8099/push/abc", "default https port"),
    ("http://127.1:8099/push/abc", "https"),
    ("http://2130706433:8099/push/abc", "https"),
    # userinfo and delimiter tricks
    ("https://fcm.googleapis.com@evil.com/x", "user info"),
    ("https://fcm.googleapis.com:443@evil.com/x", "user info"),
    ("https://user:pass@fcm.googleapis.com/x", "user info"),
    ("http://127.0.0.1:8099@127.0.0.1:22/push/x", "user info"),
    ("https://web.push.apple.com%23@evil.com/x", "user info"),
    ("https://evil.com#@fcm.googleapis.com/x", "path"),
    ("https://evil.com?@fcm.googleapis.com/x", "path"),
    ("https://evil.com/#@fcm.googleapis.com/x", "path"),
    ("https://fcm.googleapis.com/fcm/send/abc#frag", "fragment"),
    ("https://evil.com%40fcm.googleapis.com/x", "DNS name"),
    ("https://fcm.googleapis.com%2eevil.com/x", "DNS name"),
    ("https://fcm%2egoogleapis%2ecom/x", "DNS name"),
    ("https://fcm.googleapis.com%00.evil.com/x", "DNS name"),
    ("https://fcm.googleapis.com;evil.com/x", "DNS name"),
    ("https://fcm.googleapis.com:/x", "DNS name"),
    ("https://[fcm.googleapis.com]/x", "valid URL"),
    # backslashes (browsers read them as slashes, Python does not)
    ("https://evil.com\\@fcm.googleapis.com/x", "backslash"),
    ("https://fcm.googleapis.com\\@evil.com/x", "backslash"),
    ("https:\\\\fcm.googleapis.com\\x", "backslash"),
    # whitespace and control characters
    (" https://fcm.googleapis.com/x", "spaces"),
    ("https://fcm.googleapis.com/x ", "spaces"),
    ("https:// fcm.googleapis.com/x", "spaces"),
    ("https://fcm.googleapis.com/x\ty", "control"),
    ("https://fcm.googleapis.com/x\r\nHost: evil.com", "control"),
    ("https://fcm.googleapis.com/\x00", "control"),
    ("https://fcm.googleapis.com/x\x7f", "control"),
    ("https://fcm.google\x00apis.com/x", "control"),
    # odd ports
    ("https://fcm.googleapis.com:8443/fcm/send/abc", "default https port"),
    ("https://fcm.googleapis.com:80/fcm/send/abc", "default https port"),
    ("https://fcm.googleapis.com:0/fcm/send/abc", "default https port"),
    ("https://fcm.googleapis.com:99999/x", "valid URL"),
    ("https://fcm.googleapis.com:443:443/x", "valid URL"),
    ("https://fcm.googleapis.com:-1/x", "valid URL"),
    # trailing dots and empty labels
    ("https://fcm.googleapis.com./fcm/send/abc", "dot"),
    ("https://web.push.apple.com./x", "dot"),
    ("https://.push.apple.com/x", "DNS name"),
    ("https://x..push.apple.com/x", "DNS name"),
    ("https://-x.push.apple.com/x", "DNS name"),
    # suffix and look-alike tricks
    ("https://fcm.googleapis.com.evil.com/x", "not a known push service"),
    ("https://evilfcm.googleapis.com/x", "not a known push service"),
    ("https://googleapis.com/x", "not a known push service"),
    ("https://evilpush.apple.com/x", "not a known push service"),
    ("https://push.apple.com/x", "not a known push service"),
    ("https://push.apple.com.evil.com/x", "not a known push service"),
    ("https://x.push.apple.co/x", "not a known push service"),
    ("https://notify.windows.com/x", "not a known push service"),
    ("https://evilnotify.windows.com/x", "not a known push service"),
    ("https://x.notify.windows.com.evil.com/x", "not a known push service"),
    ("https://updates.push.services.mozilla.com.evil.com/x", "not a known push service"),
    ("https://fcm.googIeapis.com/x", "not a known push service"),  # capital I for l
    ("https://fcm.go0gleapis.com/x", "not a known push service"),
    ("https://xn--fcm-googleapis-xyz.com/x", "IDNA"),
    ("https://xn--fcm.googleapis.com/x", "IDNA"),
    ("https://xn--gogle-kua.googleapis.com/x", "IDNA"),
    # punycode and other reserved "??--" labels under an allowed suffix (SECURITY.md promises it)
    ("https://xn--80ak6aa92e.push.apple.com/x", "IDNA"),
    ("https://web.xn--pple-43d.push.apple.com/x", "IDNA"),
    ("https://XN--80AK6AA92E.push.apple.com/x", "IDNA"),
    ("https://ab--cd.push.apple.com/x", "reserved"),
    ("https://xn--wns-1na.notify.windows.com/x", "IDNA"),
    # IDN / homoglyphs (not ASCII: never normalised into a different host)
    ("https://fсm.googleapis.com/x", "ASCII"),  # Cyrillic es
    ("https://ｆｃｍ.googleapis.com/x", "ASCII"),  # full-width
    ("https://fcm.googleapis.com\u3002evil.com/x", "ASCII"),  # ideographic full stop
    ("https://fcm.googleapis.com\u2024evil.com/x", "ASCII"),  # one dot leader
    ("https://web.push.apple.com\u200b/x", "ASCII"),  # zero-width space
    ("https://fcm.googleapis.com/x\u202e", "ASCII"),  # right-to-left override
    # missing pieces and wrong types
    ("https://fcm.googleapis.com", "path"),
    ("https://fcm.googleapis.com/", "path"),
    ("https://fcm.googleapis.com?x=1", "path"),
    ("", "non-empty"),
    ("https://fcm.googleapis.com/" + "a" * 2100, "at most"),
]


@pytest.fixture(scope="module")
def allow_list_app(tmp_path_factory):
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp('ssrf') / 'ssrf.db'}", tmp_path_factory.mktemp("inst"),
                   PUSH_EXTRA_ORIGINS=[EXTRA + "/"])
    with app.app_context():
        yield app


@pytest.mark.parametrize("url", ALLOWED)
def test_known_push_services_and_extra_origins_are_allowed(allow_list_app, url):
    assert endpoint_problem(url) is None


@pytest.mark.parametrize(("url", "words"), REJECTED, ids=[repr(u)[:60] for u, _ in REJECTED])
def test_hostile_endpoint_is_refused_with_a_reason(allow_list_app, url, words):
    problem = endpoint_problem(url)
    assert problem is not None, f"{url!r} was allowed"
    assert words.lower() in problem.lower(), problem


@pytest.mark.parametrize("value", [None, 42, 1.5, True, ["https://fcm.googleapis.com/x"], {"url": "x"}])
def test_non_string_endpoint_is_refused(allow_list_app, value):
    assert endpoint_problem(value) == "endpoint must be a non-empty string"


def test_extra_origin_is_not_a_prefix_match(allow_list_app):
    # Only the exact origin: a longer port number or a host that starts the same is another origin.
    for url in (f"{EXTRA}0/push/x", "http://127.0.0.10:8099/push/x", f"{EXTRA}.evil.com/push/x"):
        assert endpoint_problem(url) is not None, url


# --- subscribe time: the API answers 400 and stores nothing --------------------------------------

def test_subscribe_refuses_every_hostile_endpoint_and_stores_nothing(app, client, sim):
    app.config["PUSH_EXTRA_ORIGINS"] = [EXTRA]
    good = sim_subscription(app, sim)
    before = table_snapshot(app)
    for url, words in REJECTED:
        body = {**good, "endpoint": url}
        response = client.post("/api/push/subscriptions", json=body)
        assert response.status_code == 400, (url, response.status_code, response.get_data(as_text=True))
        data = response.get_json()
        if "\x00" in url:  # refused before validation: no JSON string may carry NUL
            assert "NUL" in data["error"], (url, data)
        else:
            assert data["field"] == "endpoint" and words.lower() in data["error"].lower(), (url, data)
        # pushsubscriptionchange must not smuggle a hostile endpoint in as the old one either
        response = client.post("/api/push/subscriptions", json={**good, "oldEndpoint": url, "endpoint": url})
        assert response.status_code == 400
    assert table_snapshot(app) == before


def test_subscribe_accepts_the_known_push_services(app, client, sim):
    app.config["PUSH_EXTRA_ORIGINS"] = [EXTRA]
    good = sim_subscription(app, sim)
    for i, url in enumerate(ALLOWED):
        response = client.post("/api/push/subscriptions", json={**good, "endpoint": f"{url}{i}"})
        assert response.status_code == 201, (url, response.get_json())


# --- send time: the sender checks again and never connects ------------------------------------

def _force_rows(app, good: dict, endpoints: list[str]) -> list[int]:
    """Insert subscriptions with raw SQL, bypassing the subscribe-time check (an old allow-list,
    a restored dump, a hand edit)."""
    ids = []
    with app.app_context():
        for endpoint in endpoints:
            db.session.execute(
                text("INSERT INTO subscriptions (endpoint, p256dh, auth, all_components, browser, status, "
                     "created_at, updated_at) VALUES (:e, :p, :a, :t, 'Other', 'active', :now, :now)"),
                {"e": endpoint, "p": good["keys"]["p256dh"], "a": good["keys"]["auth"], "t": True,
                 "now": "2024-01-01 00:00:00"},
            )
        db.session.commit()
        ids = list(db.session.execute(select(Subscription.id).where(Subscription.endpoint.in_(endpoints))).scalars())
        db.session.remove()
    return ids


def _post_incident(api, name: str = "Database down") -> None:
    response = api.post("/api/v1/incidents", json={"name": name, "status": "investigating", "body": "Looking."})
    assert response.status_code == 201, response.get_json()


def _outcomes(app) -> dict[str, tuple[str, str | None]]:
    with app.app_context():
        rows = db.session.execute(
            select(Subscription.endpoint, Delivery.outcome, Delivery.reason)
            .join(Delivery, Delivery.subscription_id == Subscription.id)
        ).all()
        db.session.remove()
    return {endpoint: (outcome, reason) for endpoint, outcome, reason in rows}


def test_rows_that_bypass_the_subscribe_check_are_never_contacted(app, api, sim):
    sim.reset()
    with ConnectionRecorder() as recorder:
        app.config["PUSH_EXTRA_ORIGINS"] = [sim.origin]
        good = sim_subscription(app, sim)
        assert api.client.post("/api/push/subscriptions", json=good).status_code == 201
        port = recorder.port
        hostile = [
            f"http://127.0.0.1:{port}/push/a",  # right machine, port not in the allow-list
            f"http://localhost:{port}/push/b",
            f"http://2130706433:{port}/push/c",  # decimal 127.0.0.1
            f"http://0x7f.1:{port}/push/d",  # hex/short 127.0.0.1
            f"http://127.1:{port}/push/e",
            f"{sim.origin}@127.0.0.1:{port}/push/f",  # allowed origin as user info
            f"http://127.0.0.1:{port}#@{sim.origin[7:]}/push/g",
            f"http://127.0.0.1:{port}\\@{sim.origin[7:]}/push/h",
            # allowed origin, but a request line / header injection attempt in the path
            f"{sim.origin}/push/crlf\r\nX-Injected: 1",
            f"{sim.origin}/push/sp ace",
            f"{sim.origin}/push/caf\u00e9",
        ]
        forced = _force_rows(app, good, hostile)
        assert len(forced) == len(hostile)
        _post_incident(api)
        sim.wait_for(1)
        outcomes = _outcomes(app)
        assert recorder.connections == []
    assert len(sim.received()) == 1
    assert [a.token for a in sim.attempts()] == [good["endpoint"].rsplit("/", 1)[1]]
    assert outcomes[good["endpoint"]][0] == "sent"
    for endpoint in hostile:
        assert outcomes[endpoint] == ("failed", "endpoint not allowed"), endpoint
    with app.app_context():
        event = db.session.execute(select(Event)).scalar_one()
        assert (event.state, event.sent_count, event.failed_count) == ("done", 1, len(hostile))


def test_origin_removed_from_the_allow_list_is_no_longer_contacted(app, api, sim):
    # Subscribed while the origin was allowed; the operator then removes it from PUSH_EXTRA_ORIGINS.
    sim.reset()
    app.config["PUSH_EXTRA_ORIGINS"] = [sim.origin]
    good = sim_subscription(app, sim)
    assert api.client.post("/api/push/subscriptions", json=good).status_code == 201
    app.config["PUSH_EXTRA_ORIGINS"] = []
    _post_incident(api)
    assert sim.attempts() == []
    assert _outcomes(app)[good["endpoint"]] == ("failed", "endpoint not allowed")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_never_followed(app, api, status):
    with ConnectionRecorder() as recorder, Redirector(status, f"{recorder.origin}/push/stolen") as redirector:
        app.config["PUSH_EXTRA_ORIGINS"] = [redirector.origin]
        with PushSimulator() as keys_only:  # real browser-like keys; the redirector ignores them
            body = sim_subscription(app, keys_only)
        body["endpoint"] = f"{redirector.origin}/push/{status}"
        assert api.client.post("/api/push/subscriptions", json=body).status_code == 201
        _post_incident(api)
        outcomes = _outcomes(app)
        assert redirector.requests == [f"/push/{status}"]
        assert recorder.connections == []
    outcome, reason = outcomes[body["endpoint"]]
    assert outcome == "failed" and "redirects are not followed" in reason


def test_push_test_endpoint_cannot_be_aimed_at_an_arbitrary_url(client, app):
    # The anonymous test-push API only accepts the endpoint of an existing active subscription.
    with_keys(app)
    response = client.post("/api/push/test", json={"endpoint": "http://169.254.169.254/latest/meta-data/"})
    assert response.status_code == 404 and "error" in response.get_json()
