"""PushSender against the push-service simulator, over real HTTP and HTTPS sockets."""
from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from email.utils import formatdate
from urllib.parse import urlsplit

import pytest
import requests
from pywebpush import webpush

from statuspage.push.crypto import (
    MAX_PLAINTEXT,
    VapidSigner,
    b64url_decode,
    encrypt_aes128gcm,
    generate_vapid_keypair,
)
from statuspage.push.sender import (
    OutgoingPush,
    PushOutcome,
    PushSender,
    classify,
    parse_retry_after,
    sanitize_topic,
)
from statuspage.push.simulator import PushSimulator, SimSubscription

SUBJECT = "mailto:ops@status.example"


@pytest.fixture(scope="module")
def vapid() -> tuple[str, str]:
    return generate_vapid_keypair()


@pytest.fixture(scope="module")
def signer(vapid: tuple[str, str]) -> VapidSigner:
    return VapidSigner(vapid[0], SUBJECT)


@pytest.fixture(scope="module")
def tls_sim() -> Iterator[PushSimulator]:
    with PushSimulator(tls=True) as s:
        yield s


@pytest.fixture(scope="module")
def sender(sim_server: PushSimulator, signer: VapidSigner) -> Iterator[PushSender]:
    with PushSender(signer, is_allowed_endpoint=lambda url: url.startswith(sim_server.base_url + "/"),
                    concurrency=64, timeout=5) as s:
        yield s


def _push(sub: SimSubscription, payload: dict | bytes, **kw: object) -> OutgoingPush:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return OutgoingPush(key=sub.token, endpoint=sub.endpoint, p256dh=b64url_decode(sub.p256dh),
                        auth=b64url_decode(sub.auth), payload=data, **kw)  # type: ignore[arg-type]


def _raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


PAYLOAD = {"title": "Major outage", "body": "API is down ✗", "url": "https://status.example/i/1",
           "tag": "incident-1", "event": "incident.created", "timestamp": 1700000000}


# ----------------------------------------------------------------------------- happy paths

def test_send_over_http_is_decrypted_with_headers(sim: PushSimulator, sender: PushSender,
                                                  vapid: tuple[str, str]) -> None:
    sub = sim.new_subscription(vapid[1])
    [result] = sender.send_all([_push(sub, PAYLOAD, ttl=120, urgency="high", topic="incident-1")])
    assert (result.key, result.outcome, result.status) == (sub.token, PushOutcome.SENT, 201)
    [msg] = sim.received(sub.token)
    assert msg.payload == PAYLOAD
    assert msg.headers["TTL"] == "120"
    assert msg.headers["Urgency"] == "high"
    assert msg.headers["Topic"] == "incident-1"
    assert msg.headers["Content-Encoding"] == "aes128gcm"
    assert msg.headers["Content-Type"] == "application/octet-stream"
    assert msg.headers["Authorization"].endswith(f",k={vapid[1]}")
    assert msg.claims["aud"] == sim.base_url and msg.claims["sub"] == SUBJECT
    assert msg.body_len == len(json.dumps(PAYLOAD).encode()) + 103


def test_send_over_tls(tls_sim: PushSimulator, signer: VapidSigner, vapid: tuple[str, str]
                       ) -> None:
    subs = [tls_sim.new_subscription(vapid[1]) for _ in range(3)]
    with PushSender(signer, is_allowed_endpoint=lambda u: u.startswith("https://127.0.0.1:"),
                    ssl_context=tls_sim.ssl_context_for_clients(), timeout=5) as tls_sender:
        results = tls_sender.send_all(_push(s, {**PAYLOAD, "n": i}) for i, s in enumerate(subs))
        assert [r.outcome for r in results] == [PushOutcome.SENT] * 3
        # The same sender (loop + pool) serves the next batch.
        again = tls_sender.send_all([_push(subs[0], b"second")])
        assert again[0].outcome is PushOutcome.SENT
    assert [m.payload["n"] for s in subs for m in tls_sim.received(s.token)[:1]] == [0, 1, 2]
    assert tls_sim.received(subs[0].token)[1].plaintext == b"second"
    assert tls_sim.received(subs[0].token)[0].claims["aud"] == tls_sim.base_url


def test_tls_without_trust_fails_not_retries(tls_sim: PushSimulator, signer: VapidSigner,
                                             vapid: tuple[str, str]) -> None:
    sub = tls_sim.new_subscription(vapid[1])
    with PushSender(signer, is_allowed_endpoint=lambda u: True, timeout=5) as default_tls:
        [result] = default_tls.send_all([_push(sub, PAYLOAD)])
    assert result.outcome is PushOutcome.FAILED and "certificate" in result.reason
    assert tls_sim.attempts(sub.token) == []


def test_topic_is_sanitized(sim: PushSimulator, sender: PushSender, vapid: tuple[str, str]
                           ) -> None:
    sub = sim.new_subscription(vapid[1])
    sender.send_all([_push(sub, PAYLOAD, topic="incident 42 / database")])
    topic = sim.wait_for(1, token=sub.token)[0].headers["Topic"]
    assert len(topic) <= 32 and topic == sanitize_topic("incident 42 / database")
    assert all(c.isalnum() or c in "-_" for c in topic)


def test_500_concurrent_pushes_all_arrive(sim: PushSimulator, sender: PushSender,
                                          vapid: tuple[str, str]) -> None:
    sub = sim.new_subscription(vapid[1])
    results = sender.send_all(_push(sub, {"i": i}) for i in range(500))
    assert all(r.outcome is PushOutcome.SENT for r in results), {r.reason for r in results}
    got = sim.wait_for(500, token=sub.token)
    assert sorted(m.payload["i"] for m in got) == list(range(500))


# ----------------------------------------------------------------------------- outcomes

@pytest.mark.parametrize("status,retry_after,outcome,reason_start", [
    (404, None, PushOutcome.EXPIRED, "404"),
    (410, None, PushOutcome.EXPIRED, "410"),
    (413, None, PushOutcome.FAILED, "413 Payload Too Large: forced 413"),
    (400, None, PushOutcome.FAILED, "400 Bad Request: forced"),
    (403, None, PushOutcome.FAILED, "403 Forbidden: forced"),
    (401, None, PushOutcome.FAILED, "401 Unauthorized"),
    (301, None, PushOutcome.FAILED, "301 Moved Permanently: redirects are not followed"),
    (429, 7, PushOutcome.RETRY, "429"),
    (503, None, PushOutcome.RETRY, "503"),
    (500, 30, PushOutcome.RETRY, "500"),
])
def test_forced_status_maps_to_outcome(sim: PushSimulator, sender: PushSender,
                                       vapid: tuple[str, str], status: int,
                                       retry_after: int | None, outcome: PushOutcome,
                                       reason_start: str) -> None:
    sub = sim.new_subscription(vapid[1])
    sim.respond_with(sub.token, status, retry_after=retry_after, times=1)
    [result] = sender.send_all([_push(sub, PAYLOAD)])
    assert (result.outcome, result.status) == (outcome, status)
    assert result.reason.startswith(reason_start), result.reason
    assert result.retry_after == (float(retry_after) if retry_after is not None else None)
    assert [a.status for a in sim.attempts(sub.token)] == [status]
    assert sim.received(sub.token) == []
    # `times=1`: the next request is handled normally again.
    assert sender.send_all([_push(sub, PAYLOAD)])[0].outcome is PushOutcome.SENT
    assert [a.status for a in sim.attempts(sub.token)] == [status, 201]


def test_respond_until_reset_and_gone(sim: PushSimulator, sender: PushSender,
                                      vapid: tuple[str, str]) -> None:
    sub = sim.new_subscription(vapid[1])
    sim.respond_with(sub.token, 503)
    results = sender.send_all([_push(sub, PAYLOAD)] * 3)
    assert {r.outcome for r in results} == {PushOutcome.RETRY}
    assert len(sim.attempts(sub.token)) == 3
    sim.respond_with(sub.token, 201, times=0)  # replaced, then expires immediately
    sim.expire(sub.token)
    assert sender.send_all([_push(sub, PAYLOAD)])[0].status == 410
    sim.remove(sub.token)
    assert sender.send_all([_push(sub, PAYLOAD)])[0].outcome is PushOutcome.EXPIRED


def test_wrong_vapid_key_is_rejected(sim: PushSimulator, sender: PushSender) -> None:
    _, other_public = generate_vapid_keypair()
    sub = sim.new_subscription(other_public)  # subscribed with a different server key
    [result] = sender.send_all([_push(sub, PAYLOAD)])
    assert (result.outcome, result.status) == (PushOutcome.FAILED, 403)
    assert "key mismatch" in result.reason
    assert sim.received(sub.token) == []


def test_disallowed_endpoint_is_never_contacted(sim: PushSimulator, signer: VapidSigner,
                                                vapid: tuple[str, str]) -> None:
    sub = sim.new_subscription(vapid[1])
    checked: list[str] = []

    def policy(url: str) -> bool:
        checked.append(url)
        return False

    with PushSender(signer, is_allowed_endpoint=policy) as strict:
        [result] = strict.send_all([_push(sub, PAYLOAD)])
    assert (result.outcome, result.status, result.reason) == (
        PushOutcome.FAILED, None, "endpoint not allowed")
    assert checked == [sub.endpoint]
    assert sim.attempts(sub.token) == []


def test_policy_exception_fails_closed(sim: PushSimulator, signer: VapidSigner,
                                       vapid: tuple[str, str]) -> None:
    sub = sim.new_subscription(vapid[1])
    with PushSender(signer, is_allowed_endpoint=lambda u: 1 / 0) as broken:  # type: ignore[arg-type,return-value]
        assert broken.send_all([_push(sub, PAYLOAD)])[0].reason == "endpoint not allowed"
    assert sim.attempts(sub.token) == []


def test_delay_beyond_timeout_is_retry(signer: VapidSigner, vapid: tuple[str, str]) -> None:
    with PushSimulator() as slow:
        sub = slow.new_subscription(vapid[1])
        slow.set_delay(0.6)
        with PushSender(signer, is_allowed_endpoint=lambda u: True, timeout=0.2) as s:
            t0 = time.monotonic()
            [result] = s.send_all([_push(sub, PAYLOAD)])
        assert time.monotonic() - t0 < 0.5
        assert result.outcome is PushOutcome.RETRY and "timeout" in result.reason


def test_connection_refused_is_retry(signer: VapidSigner, vapid: tuple[str, str]) -> None:
    with PushSimulator() as gone:
        sub = gone.new_subscription(vapid[1])
    # The simulator is stopped: nothing listens on that port any more.
    with PushSender(signer, is_allowed_endpoint=lambda u: True, timeout=2) as s:
        [result] = s.send_all([_push(sub, PAYLOAD)])
    assert result.outcome is PushOutcome.RETRY and result.status is None
    assert "connection error" in result.reason


def test_oversized_payload_fails_without_request(sim: PushSimulator, sender: PushSender,
                                                 vapid: tuple[str, str]) -> None:
    sub = sim.new_subscription(vapid[1])
    ok, big = sender.send_all([_push(sub, b"x" * MAX_PLAINTEXT),
                               _push(sub, b"x" * (MAX_PLAINTEXT + 1))])
    assert ok.outcome is PushOutcome.SENT and len(sim.received(sub.token)[0].plaintext) == 3993
    assert big.outcome is PushOutcome.FAILED and "too large" in big.reason
    assert len(sim.attempts(sub.token)) == 1


def test_send_all_empty_and_order(sim: PushSimulator, sender: PushSender,
                                  vapid: tuple[str, str]) -> None:
    assert sender.send_all([]) == []
    subs = [sim.new_subscription(vapid[1]) for _ in range(5)]
    sim.respond_with(subs[2].token, 410)
    results = sender.send_all([_push(s, PAYLOAD) for s in subs])
    assert [r.key for r in results] == [s.token for s in subs]
    assert [r.outcome for r in results].count(PushOutcome.EXPIRED) == 1
    assert results[2].outcome is PushOutcome.EXPIRED


# ----------------------------------------------------------------------------- protocol checks

def test_simulator_validates_requests_like_a_push_service(sim: PushSimulator,
                                                          signer: VapidSigner,
                                                          vapid: tuple[str, str]) -> None:
    sub = sim.new_subscription(vapid[1])
    body = encrypt_aes128gcm(b"{}", b64url_decode(sub.p256dh), b64url_decode(sub.auth))
    good = {"TTL": "60", "Content-Encoding": "aes128gcm",
            "Authorization": signer.header_for(sub.endpoint)}
    assert _raw_post(sub.endpoint, body, good)[0] == 201
    assert _raw_post(sub.endpoint, body, {**good, "TTL": "soon"})[0] == 400
    no_ttl = {k: v for k, v in good.items() if k != "TTL"}
    assert _raw_post(sub.endpoint, body, no_ttl)[0] == 400
    assert _raw_post(sub.endpoint, body, {**good, "Content-Encoding": "aesgcm"})[0] == 415
    no_auth = {k: v for k, v in good.items() if k != "Authorization"}
    assert _raw_post(sub.endpoint, body, no_auth)[0] == 401
    status, text = _raw_post(sub.endpoint, body, {**good, "Authorization": "vapid t=x,k=y"})
    assert status == 403 and "VAPID" in text
    assert _raw_post(sub.endpoint, b"\0" * 4097, good)[0] == 413
    assert _raw_post(sub.endpoint, body[:-1] + b"\0", good)[0] == 400
    assert _raw_post(sim.base_url + "/push/nope", body, good)[0] == 404
    # Audience must be this simulator's origin, not some other host.
    other_aud = signer.header_for("https://fcm.googleapis.com/fcm/send/x")
    status, text = _raw_post(sub.endpoint, body, {**good, "Authorization": other_aud})
    assert status == 403 and "aud mismatch" in text
    assert len(sim.received(sub.token)) == 1


def test_pywebpush_reference_client_is_accepted(sim: PushSimulator, tls_sim: PushSimulator,
                                                vapid: tuple[str, str]) -> None:
    """pywebpush is the reference implementation; the simulator must accept what it sends."""
    for server in (sim, tls_sim):
        sub = server.new_subscription(vapid[1])
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE in the env would override .verify
        if server.cert_path:
            session.verify = server.cert_path
        resp = webpush(sub.to_json(), data=json.dumps(PAYLOAD), vapid_private_key=vapid[0],
                       vapid_claims={"sub": SUBJECT}, ttl=60, requests_session=session,
                       timeout=5)
        assert resp.status_code == 201 and resp.headers["Location"]
        [msg] = server.received(sub.token)
        assert msg.payload == PAYLOAD and msg.claims["sub"] == SUBJECT


def test_register_subscription_and_control_api(sim: PushSimulator, sender: PushSender,
                                               vapid: tuple[str, str]) -> None:
    owned = sim.new_subscription(vapid[1])
    again = sim.register_subscription("browser-1", owned.private_key, owned.auth, vapid[1])
    assert again.p256dh == owned.p256dh and again.endpoint.endswith("/push/browser-1")
    assert sender.send_all([_push(again, PAYLOAD)])[0].outcome is PushOutcome.SENT

    session = requests.Session()
    created = session.post(f"{sim.base_url}/_sim/subscriptions",
                           json={"applicationServerKey": vapid[1]}, timeout=5).json()
    assert set(created) >= {"endpoint", "expirationTime", "keys", "privateKey", "token"}
    sub = sim.register_subscription(created["token"], created["privateKey"],
                                    created["keys"]["auth"], vapid[1])
    assert session.post(f"{sim.base_url}/_sim/respond",
                        json={"token": sub.token, "status": 429, "retry_after": 3, "times": 1},
                        timeout=5).status_code == 200
    first, second = (sender.send_all([_push(sub, PAYLOAD)])[0] for _ in range(2))
    assert (first.outcome, first.retry_after) == (PushOutcome.RETRY, 3.0)
    assert second.outcome is PushOutcome.SENT
    messages = session.get(f"{sim.base_url}/_sim/messages", params={"token": sub.token},
                           timeout=5).json()
    assert [m["payload"] for m in messages] == [PAYLOAD]


# ----------------------------------------------------------------------------- classify

def test_classify_and_retry_after_forms() -> None:
    assert classify(201, {}, "")[0] is PushOutcome.SENT
    assert classify(202, {}, "")[0] is PushOutcome.SENT
    outcome, reason, after = classify(413, {}, "x" * 500)
    assert outcome is PushOutcome.FAILED and reason == "413 Payload Too Large: " + "x" * 200
    assert after is None
    assert classify(429, {"Retry-After": "120"}, "")[2] == 120.0
    assert classify(502, {}, "")[:1] == (PushOutcome.RETRY,)
    future = formatdate(time.time() + 60, usegmt=True)
    assert 55 <= (parse_retry_after(future) or 0) <= 60
    assert parse_retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
