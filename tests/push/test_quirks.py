"""Push-service quirks, one test each: WNS throttling (406 + Retry-After) is a retry; TTL 0 on WNS
sends X-WNS-Cache-Policy: no-cache; VAPID subjects Apple refuses are refused at start-up and in
`vapid generate`; every payload we build fits the smallest body any known service accepts."""
from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select

from statuspage import create_app
from statuspage.config import ConfigError
from statuspage.extensions import db
from statuspage.models import AdminAlert
from statuspage.push.crypto import (
    MAX_PLAINTEXT,
    VapidSigner,
    b64url_decode,
    b64url_encode,
    decrypt_aes128gcm,
    encrypt_aes128gcm,
    generate_vapid_keypair,
    public_key_b64,
)
from statuspage.push.delivery import get_sender
from statuspage.push.formats import encode_for
from statuspage.push.keys import subject_problem
from statuspage.push.sender import OutgoingPush, PushOutcome, PushSender, classify
from statuspage.push.services import KNOWN_SERVICES, PushService, push_service, smallest_max_body
from statuspage.push.transport import Headers, Response
from tests.push import helpers as ph

WNS = "https://wns2-par02p.notify.windows.com/w/?token=BQYAAA"
FCM = "https://fcm.googleapis.com/fcm/send/abc"
APPLE = "https://web.push.apple.com/QGuQyavXutnMtmBNkpI1KA"


class CannedTransport:
    """A Transport (push/transport.py) that answers every request with one canned response and
    records what was sent: the sender's protocol decisions without a network."""

    def __init__(self, loop: asyncio.AbstractEventLoop, status: int, headers: dict[str, str]) -> None:
        self.loop, self.status, self.headers = loop, status, headers
        self.requests: list[dict[str, str]] = []
        self.bodies: list[bytes] = []

    def submit(self, origin, authority, path, headers, body, deadline, on_done):
        self.requests.append({"host": authority, **dict(headers)})
        self.bodies.append(body)
        response = Response(self.status, Headers({k.lower(): v for k, v in self.headers.items()}), b"throttled")
        self.loop.call_soon(on_done, response, None)
        return object()

    def cancel(self, handle) -> None:
        pass

    def expire(self, now: float) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.fixture
def canned() -> Iterator:
    made: list[CannedTransport] = []
    senders: list[PushSender] = []

    def sender(status: int, headers: dict[str, str] | None = None) -> tuple[PushSender, list[CannedTransport]]:
        def factory(loop):
            made.append(CannedTransport(loop, status, headers or {}))
            return made[-1]

        s = PushSender(VapidSigner(generate_vapid_keypair()[0], "mailto:ops@status.example"),
                       is_allowed_endpoint=lambda url: True, transport_factory=factory)
        senders.append(s)
        return s, made

    yield sender
    for s in senders:
        s.close()


def _push(endpoint: str, ttl: int = 60) -> OutgoingPush:
    key = ec.generate_private_key(ec.SECP256R1())
    return OutgoingPush(1, endpoint, b64url_decode(public_key_b64(key)), secrets.token_bytes(16), b'{"title":"t"}',
                        ttl=ttl)


# --- WNS ---------------------------------------------------------------------------------------------

def test_wns_406_with_retry_after_is_a_retry_not_a_failure(canned):
    sender, _ = canned(406, {"Retry-After": "120"})
    [result] = sender.send_all([_push(WNS)])
    assert (result.outcome, result.status, result.retry_after) == (PushOutcome.RETRY, 406, 120.0)
    # The same answer from another service means what HTTP says: the request was not acceptable.
    assert classify(406, {"Retry-After": "120"}, "", PushService.FCM)[0] is PushOutcome.FAILED
    assert classify(406, {}, "", PushService.WNS)[:2] == (PushOutcome.RETRY, "406 Not Acceptable")


@pytest.mark.parametrize(("endpoint", "ttl", "expected"), [
    (WNS, 0, "no-cache"), (WNS, 60, None), (FCM, 0, None), (APPLE, 0, None),
])
def test_ttl_0_on_wns_asks_it_not_to_cache(canned, endpoint, ttl, expected):
    sender, made = canned(201)
    [result] = sender.send_all([_push(endpoint, ttl)])
    assert result.outcome is PushOutcome.SENT
    [request] = made[0].requests
    assert request["TTL"] == str(ttl)
    assert request.get("X-WNS-Cache-Policy") == expected


def test_push_service_is_known_by_host():
    assert push_service(WNS) is PushService.WNS
    assert push_service(APPLE) is PushService.APPLE
    assert push_service(FCM) is PushService.FCM
    assert push_service("https://updates.push.services.mozilla.com/wpush/v2/x") is PushService.MOZILLA
    assert push_service("https://notify.windows.com.evil.example/x") is PushService.OTHER
    assert push_service("https://push.apple.com/x") is PushService.OTHER  # a subdomain is required
    assert push_service("http://[::1") is PushService.OTHER


# --- VAPID subjects Apple refuses -------------------------------------------------------------------

@pytest.mark.parametrize("subject", [
    "mailto:admin@localhost", "mailto:ops@status.localhost", "mailto:ops@127.0.0.1", "mailto:ops@printer.local",
    "mailto:ops@intranet", "mailto:ops@exa_mple.com", "mailto: ops@example.com", "mailto:ops @example.com",
    "mailto:@example.com", "mailto:ops", "https://localhost:5000", "https://10.0.0.1", "ops@example.com",
])
def test_subjects_apple_rejects_are_named_with_the_reason(subject):
    assert subject_problem(subject)


@pytest.mark.parametrize("subject", ["mailto:ops@example.com", "mailto:status+push@mail.example.co.uk",
                                     "https://status.example.com", "https://status.example.com/contact"])
def test_real_subjects_pass(subject):
    assert subject_problem(subject) is None


def test_startup_refuses_a_vapid_subject_apple_rejects(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    config = {"TESTING": True, "SECRET_KEY": ph.TEST_SECRET, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
              "REDIS_URL": None, "PUBLIC_SNAPSHOT_DIR": "off"}
    with pytest.raises(ConfigError, match="VAPID_SUBJECT.*localhost"):
        create_app({**config, "VAPID_SUBJECT": "mailto:admin@localhost"})
    with pytest.raises(ConfigError, match="spaces"):
        create_app({**config, "VAPID_SUBJECT": "mailto: ops@example.com"})
    assert create_app({**config, "VAPID_SUBJECT": "mailto:ops@example.com"}).config["VAPID_SUBJECT"]


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_vapid_generate_refuses_a_subject_apple_rejects(app):
    for subject in ("mailto:admin@localhost", "mailto: ops@example.com"):
        result = app.test_cli_runner().invoke(args=["vapid", "generate", "--subject", subject])
        assert result.exit_code != 0 and "Apple" in result.output, result.output
    result = app.test_cli_runner().invoke(args=["vapid", "generate", "--subject", "mailto:ops@example.com"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
@pytest.mark.app_config(SITE_URL="https://localhost:8443")
def test_default_subject_never_names_localhost(app):
    result = app.test_cli_runner().invoke(args=["vapid", "generate"])
    assert result.exit_code == 0, result.output
    assert "subject mailto:admin@example.com" in result.output


# --- payload size -------------------------------------------------------------------------------------

def test_every_payload_fits_the_smallest_body_any_known_service_accepts():
    assert smallest_max_body() == 4096
    assert {info.service for info in KNOWN_SERVICES} == {PushService.FCM, PushService.MOZILLA, PushService.APPLE,
                                                         PushService.WNS}
    receiver = ec.generate_private_key(ec.SECP256R1())
    p256dh = b64url_decode(public_key_b64(receiver))
    huge = {"title": "☃" * 3000, "body": "𝄞" * 3000, "icon": "https://status.example.com/" + "i" * 400,
            "badge": "https://status.example.com/" + "b" * 400, "url": "https://status.example.com/incidents/1",
            "tag": "incident-1", "event": "incident.created", "timestamp": 1767225600000}
    for declarative in (False, True):
        plaintext = encode_for(dict(huge), declarative)
        assert len(plaintext) <= MAX_PLAINTEXT
        json.loads(plaintext)
        assert len(encrypt_aes128gcm(plaintext, p256dh, secrets.token_bytes(16))) <= smallest_max_body()


# --- the same quirks through a whole delivery --------------------------------------------------------

def _wait_for(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_a_wns_subscriber_throttled_with_406_waits_for_retry_after(eager_app, eager_api):
    """An incident to a WNS endpoint whose service answers 406 + Retry-After: 120: the delivery
    waits in state retry for 120 s (not failed, no admin alert), and TTL 0 went out with no-cache."""
    ph.generate_keys(eager_app)
    sub = ph.browser_subscription(WNS)
    sub_id = eager_api.client.post("/api/push/subscriptions", json=sub).json["id"]
    assert eager_api.put("/api/v1/triggers", json={"incident.created": {"ttl": 0}}).status_code == 200
    made: list[CannedTransport] = []
    with eager_app.app_context():
        sender = get_sender()  # the worker's cached sender: only its wire is replaced

        def factory(loop):
            made.append(CannedTransport(loop, 406, {"Retry-After": "120"}))
            return made[-1]

        sender._transport_factory = factory
    r = eager_api.post("/api/v1/incidents", json={"name": "Throttled", "impact": "minor", "body": "x"})
    assert r.status_code == 201
    [event] = _wait_for(lambda: [e for e in ph.event_rows(eager_app) if e.fanned_out_at])

    def retrying():
        row = ph.delivery_rows(eager_app, event.id).get(sub_id)
        return row if row is not None and row.outcome == "retry" else None

    delivery = _wait_for(retrying)
    assert (delivery.status_code, delivery.reason) == (406, "will retry: 406 Not Acceptable")
    assert 110 <= (delivery.next_attempt_at - delivery.updated_at).total_seconds() <= 130
    [request] = made[0].requests
    assert request["host"].endswith(".notify.windows.com")
    assert (request["TTL"], request["X-WNS-Cache-Policy"]) == ("0", "no-cache")
    with eager_app.app_context():
        assert db.session.execute(select(func.count()).select_from(AdminAlert)).scalar_one() == 0


def test_auto_format_sends_each_service_its_shape_in_one_fan_out(eager_app, eager_api):
    """payload_format auto: in one event, the Apple subscriber's message decrypts to Declarative
    Web Push and the FCM subscriber's to the classic JSON (same title and link)."""
    ph.generate_keys(eager_app)
    keys = {}
    for endpoint in (APPLE, FCM):
        private = ec.generate_private_key(ec.SECP256R1())
        auth = secrets.token_bytes(16)
        body = {"endpoint": endpoint, "expirationTime": None,
                "keys": {"p256dh": public_key_b64(private), "auth": b64url_encode(auth)}}
        assert eager_api.client.post("/api/push/subscriptions", json=body).status_code == 201
        keys[endpoint.split("/")[2]] = (private, auth)
    made: list[CannedTransport] = []
    with eager_app.app_context():
        get_sender()._transport_factory = lambda loop: made.append(CannedTransport(loop, 201, {})) or made[-1]
    r = eager_api.post("/api/v1/incidents", json={"name": "Login errors", "impact": "minor", "body": "Looking."})
    incident_id = r.json["id"]
    _wait_for(lambda: [e for e in ph.event_rows(eager_app) if e.state == "done"])
    received = {}
    for request, body in zip(made[0].requests, made[0].bodies, strict=True):
        private, auth = keys[request["host"]]
        received[request["host"]] = json.loads(decrypt_aes128gcm(body, private, auth))
    apple, fcm = received["web.push.apple.com"], received["fcm.googleapis.com"]
    assert apple["web_push"] == 8030 and apple["mutable"] is True
    assert apple["notification"]["title"] == fcm["title"] == "Example Status: Login errors"
    assert apple["notification"]["navigate"] == fcm["url"] == f"https://status.example.com/incidents/{incident_id}"
    assert "web_push" not in fcm
