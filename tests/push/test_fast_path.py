"""The fast send path does all the protocol work: every message the fan-out benchmark counts is
one the project's push-service simulator verifies (VAPID signature, audience, expiry, headers)
and decrypts (aes128gcm with the subscriber's keys), over HTTPS with a verified certificate.

The same code the benchmark measures runs here: RQ worker -> fan_out -> several send_batch jobs ->
PushSender's pooled HTTP/1.1 connections, burst writes and per-message encryption. No timing
assertions: speed is the benchmark's business (bench/fanout.py), correctness is this file's.
"""
from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import select

import statuspage.push.http1 as http1
import statuspage.push.sender as sender_module
from statuspage.extensions import db
from statuspage.models import Delivery, Event, Subscription
from statuspage.push.crypto import (
    VapidSigner,
    b64url_decode,
    decrypt_aes128gcm,
    encrypt_aes128gcm,
    generate_vapid_keypair,
)
from statuspage.push.sender import OutgoingPush, PushOutcome, PushSender
from statuspage.push.simulator import PushSimulator, SimSubscription
from tests.push import helpers as ph

SUBJECT = "mailto:ops@status.example"
SUBSCRIBERS = 120


@pytest.fixture
def tls_sim() -> Iterator[PushSimulator]:
    with PushSimulator(tls=True) as s:
        yield s


@pytest.fixture(params=["sqlite", "postgresql"])
def fast_app(request, tmp_path, pg_database, tls_sim):
    # Small batches and a small pool so one event spreads over several batch jobs and the
    # sender's request queue, connection reuse and burst writes are all exercised.
    app = ph.build_app(request.param, tmp_path, pg_database, tls_sim, redis_url=ph.PUSH_REDIS_URL,
                       PUSH_BATCH_SIZE=25, PUSH_CONCURRENCY=16)
    yield app
    ph.dispose(app)


@pytest.fixture
def body_spy(monkeypatch) -> list[bytes]:
    """Every encrypted body the sender produces (the real function runs; this only records)."""
    bodies: list[bytes] = []

    def recording(*args, **kwargs):
        body = encrypt_aes128gcm(*args, **kwargs)
        bodies.append(body)
        return body

    monkeypatch.setattr(sender_module, "encrypt_aes128gcm", recording)
    return bodies


def _header_parts(body: bytes) -> tuple[bytes, bytes]:
    """(salt, sender's ephemeral public key) from an aes128gcm header (RFC 8188 section 2.1)."""
    assert body[20] == 65  # idlen: the keyid is the 65-byte uncompressed P-256 point
    return body[:16], body[21:86]


def test_fan_out_messages_are_verified_and_decrypted_by_the_simulator(fast_app, tls_sim, body_spy):
    public_key = ph.generate_keys(fast_app)
    client = fast_app.test_client()
    subs = {}
    for _ in range(SUBSCRIBERS):
        sub, sub_id = ph.subscribe(client, tls_sim, public_key)
        subs[sub.token] = (sub, sub_id)
    api = ph.Api(client, ph.create_admin_token(fast_app))
    r = api.post("/api/v1/incidents", json={"name": "Database unavailable", "status": "investigating",
                                            "impact": "major", "body": "Looking into it."})
    assert r.status_code == 201, r.json

    ph.run_worker(fast_app)  # the real RQ worker: fan_out, then the batch jobs

    received = tls_sim.received()
    # Exactly one message per subscriber, each accepted only after the simulator verified the
    # VAPID JWT against the subscription's applicationServerKey and decrypted the body.
    assert Counter(m.token for m in received) == Counter(list(subs))
    assert [a.status for a in tls_sim.attempts()] == [201] * SUBSCRIBERS
    payloads = {json.dumps(m.payload, sort_keys=True) for m in received}
    assert len(payloads) == 1  # the same notification for everyone...
    payload = received[0].payload
    assert payload["title"] and payload["event"] == "incident.created"
    assert payload["url"].startswith("https://status.example.com/")
    for message in received:
        assert message.headers["Content-Encoding"] == "aes128gcm"
        assert message.headers["TTL"].isdigit() and message.headers["Urgency"] in ("normal", "high")
        assert message.headers["Topic"] == payload["tag"]
        assert message.claims["aud"] == tls_sim.origin and message.claims["sub"]
        assert message.headers["Authorization"].endswith(f",k={public_key}")
    # ...but every body was encrypted separately: its own salt and its own ephemeral ECDH key.
    assert len(body_spy) == SUBSCRIBERS
    salts, ephemeral_keys = zip(*(_header_parts(body) for body in body_spy), strict=True)
    assert len(set(salts)) == SUBSCRIBERS and len(set(ephemeral_keys)) == SUBSCRIBERS
    # One VAPID signature per push-service origin, reused for the whole fan-out.
    assert len({m.headers["Authorization"] for m in received}) == 1

    with fast_app.app_context():
        event = db.session.execute(select(Event).where(Event.type == "incident.created")).scalar_one()
        assert (event.state, event.queued_count, event.sent_count, event.failed_count, event.expired_count) == (
            "done", SUBSCRIBERS, SUBSCRIBERS, 0, 0)
        outcomes = db.session.execute(
            select(Delivery.outcome, Delivery.status_code).where(Delivery.event_id == event.id)).all()
        assert Counter(outcomes) == Counter({("sent", 201): SUBSCRIBERS})
        active = db.session.execute(select(Subscription.last_active_at)).scalars().all()
        assert len(active) == SUBSCRIBERS and all(active)
        db.session.remove()


def _push(sub: SimSubscription, payload: bytes, key: object) -> OutgoingPush:
    return OutgoingPush(key=key, endpoint=sub.endpoint, p256dh=b64url_decode(sub.p256dh),
                        auth=b64url_decode(sub.auth), payload=payload, topic="incident-7")


def test_sender_queue_reuse_and_reconnect_keep_every_message_intact(body_spy):
    """Many requests per connection (queued, written in bursts) under push-service latency, then
    the service restarts between two sends: pooled connections it closed are replaced, and each
    body still decrypts with the subscriber's private key."""
    private_key, public_key = generate_vapid_keypair()
    with PushSimulator(tls=True) as first:
        subs = [first.new_subscription(public_key) for _ in range(5)]
        first.set_delay(0.02)  # requests wait in the pool's queue while others are in flight
        port = first.port
        trust = first.ssl_context_for_clients()
        sender = PushSender(VapidSigner(private_key, SUBJECT), is_allowed_endpoint=lambda url: True,
                            concurrency=24, timeout=10, ssl_context=trust)
        pushes = [_push(subs[i % 5], json.dumps({"n": i}).encode(), i) for i in range(200)]
        results = sender.send_all(pushes)
        assert [r.key for r in results] == list(range(200))
        assert {r.outcome for r in results} == {PushOutcome.SENT}
        got = first.received()
        assert sorted(m.payload["n"] for m in got) == list(range(200))
        assert all(m.claims["aud"] == first.origin for m in got)
        # Fewer connections than messages: a new one opens only when requests had to wait.
        [pool] = sender._transport._pools.values()
        assert 1 <= pool.total <= 24
    try:
        # The same origin comes back (same port, same subscriber keys, a new certificate); the
        # connections in the pool were closed by the old process.
        with PushSimulator(port=port, tls=True) as second:
            for sub in subs:
                second.register_subscription(sub.token, sub.private_key, sub.auth, public_key)
            trust.load_verify_locations(cafile=second.cert_path)  # new connections trust it too
            again = sender.send_all([_push(s, b"after restart", f"again-{i}") for i, s in enumerate(subs)])
            assert [r.outcome for r in again] == [PushOutcome.SENT] * 5, [r.reason for r in again]
            assert [m.plaintext for m in second.received()] == [b"after restart"] * 5
    finally:
        sender.close()
    # What the spy recorded is what a browser decrypts: the last body, by hand.
    assert decrypt_aes128gcm(body_spy[-1], subs[-1].private_key, b64url_decode(subs[-1].auth)) == b"after restart"


def test_a_batch_never_waits_forever_for_an_answer(monkeypatch):
    """Per-request deadlines normally end a request nobody answers; even with those disabled
    (a bug, say), the batch gives up after the timeout plus a margin and reports a retry."""
    private_key, public_key = generate_vapid_keypair()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes the handshakes; nothing ever reads or answers
    port = silent.getsockname()[1]
    monkeypatch.setattr(http1._Pool, "expire", lambda self, now: None)
    sub_key = b64url_decode(public_key)  # any valid P-256 point will do: nobody decrypts
    try:
        with PushSender(VapidSigner(private_key, SUBJECT), is_allowed_endpoint=lambda url: True,
                        timeout=0.3) as sender:
            sender.stall_margin = 0.2
            pushes = [OutgoingPush(i, f"http://127.0.0.1:{port}/push/{i}", sub_key, bytes(16), b"{}")
                      for i in range(3)]
            results = sender.send_all(pushes)
    finally:
        silent.close()
    assert [(r.key, r.outcome) for r in results] == [(i, PushOutcome.RETRY) for i in range(3)]
    assert all("timeout" in r.reason for r in results)
