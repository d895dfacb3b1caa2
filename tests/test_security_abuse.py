"""Abuse: per-client rate limits (Flask-Limiter, counters in Redis) on subscribe, unsubscribe,
the visitor test push and admin sign-in; 429 answers are JSON with Retry-After and store nothing;
X-Forwarded-For is honoured only behind TRUSTED_PROXIES; Redis going away never turns the
subscribe API into 500s (limits fall back to per-process memory and come back to Redis)."""
from __future__ import annotations

import time

import pytest
from redis import Redis
from sqlalchemy import func, select

from statuspage.extensions import db, limiter
from statuspage.models import Subscription
from statuspage.push.simulator import PushSimulator
from tests.conftest import create_admin_token, make_app
from tests.hardening_support import PrivateRedis, sim_subscription, table_snapshot

LIMIT_REDIS = "redis://127.0.0.1:6379/11"  # a database of its own for rate-limit counters


@pytest.fixture(autouse=True)
def _clean_limits():
    Redis.from_url(LIMIT_REDIS).flushdb()
    yield
    Redis.from_url(LIMIT_REDIS).flushdb()
    limiter._storage_dead = False  # the limiter is a module singleton: leave it healthy for the next app


def limited_app(tmp_path, url: str, sim: PushSimulator, **limits):
    config = {"RATELIMIT_ENABLED": True, "RATELIMIT_STORAGE_URI": LIMIT_REDIS,
              "PUSH_EXTRA_ORIGINS": [sim.origin], **limits}
    return make_app(url, tmp_path, **config)


@pytest.fixture(params=["sqlite", "postgresql"])
def lapp(request, tmp_path, pg_database, sim):
    url = f"sqlite:///{tmp_path / 'abuse.db'}" if request.param == "sqlite" else pg_database
    app = limited_app(tmp_path, url, sim, RATELIMIT_SUBSCRIBE="5 per minute; 8 per day",
                      RATELIMIT_UNSUBSCRIBE="3 per minute", RATELIMIT_TEST_PUSH="2 per minute",
                      RATELIMIT_LOGIN="3 per minute")
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _ip(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def _assert_429(response, *, json: bool = True) -> None:
    assert response.status_code == 429
    retry_after = response.headers.get("Retry-After")
    assert retry_after is not None and retry_after.isdigit() and 0 < int(retry_after) <= 86400, retry_after
    assert response.headers.get("X-RateLimit-Remaining") == "0"
    if json:
        assert response.is_json and response.get_json()["error"].startswith("too many requests")


def _count(app) -> int:
    with app.app_context():
        n = db.session.execute(select(func.count(Subscription.id))).scalar_one()
        db.session.remove()
    return n


def test_subscriptions_are_capped_per_client_and_the_429_stores_nothing(lapp, sim):
    client = lapp.test_client()
    for _ in range(5):
        assert client.post("/api/push/subscriptions", json=sim_subscription(lapp, sim), **_ip("198.51.100.7")
                           ).status_code == 201
    before = table_snapshot(lapp)
    refused = client.post("/api/push/subscriptions", json=sim_subscription(lapp, sim), **_ip("198.51.100.7"))
    _assert_429(refused)
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert table_snapshot(lapp) == before
    # another client is not affected
    assert client.post("/api/push/subscriptions", json=sim_subscription(lapp, sim), **_ip("198.51.100.8")
                       ).status_code == 201
    assert _count(lapp) == 6
    # the counters live in Redis (shared by every gunicorn worker), not in this process
    assert any(b"statuspage" in key for key in Redis.from_url(LIMIT_REDIS).keys("*"))
    Redis.from_url(LIMIT_REDIS).flushdb()
    assert client.post("/api/push/subscriptions", json=sim_subscription(lapp, sim), **_ip("198.51.100.7")
                       ).status_code == 201


def test_daily_cap_holds_even_when_the_minute_window_resets(tmp_path, sim):
    app = limited_app(tmp_path, f"sqlite:///{tmp_path / 'd.db'}", sim, RATELIMIT_SUBSCRIBE="100 per minute; 4 per day")
    client = app.test_client()
    codes = [client.post("/api/push/subscriptions", json=sim_subscription(app, sim), **_ip("203.0.113.9")).status_code
             for _ in range(6)]
    assert codes == [201, 201, 201, 201, 429, 429]
    refused = client.post("/api/push/subscriptions", json=sim_subscription(app, sim), **_ip("203.0.113.9"))
    _assert_429(refused)
    assert int(refused.headers["Retry-After"]) > 60  # the day window, not the minute one
    assert _count(app) == 4


def test_unsubscribe_and_test_push_are_limited(lapp, sim):
    client = lapp.test_client()
    body = sim_subscription(lapp, sim)
    assert client.post("/api/push/subscriptions", json=body, **_ip("192.0.2.1")).status_code == 201
    for _ in range(2):
        assert client.post("/api/push/test", json={"endpoint": body["endpoint"]}, **_ip("192.0.2.1")).status_code == 202
    _assert_429(client.post("/api/push/test", json={"endpoint": body["endpoint"]}, **_ip("192.0.2.1")))
    for _ in range(3):  # unknown endpoints count too: probing is what the limit is for
        assert client.delete("/api/push/subscriptions", json={"endpoint": body["endpoint"] + "x"},
                             **_ip("192.0.2.1")).status_code == 404
    before = table_snapshot(lapp)
    _assert_429(client.delete("/api/push/subscriptions", json={"endpoint": body["endpoint"]}, **_ip("192.0.2.1")))
    assert table_snapshot(lapp) == before  # the refused unsubscribe did not happen


def test_failed_sign_ins_are_throttled_but_correct_ones_never_count(lapp):
    create_admin_token(lapp)
    client = lapp.test_client()
    for _ in range(5):  # more correct sign-ins than the limit allows failures
        fresh = lapp.test_client()
        response = fresh.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"},
                              **_ip("192.0.2.50"))
        assert response.status_code in (302, 303)
    for _ in range(3):
        response = client.post("/admin/login", data={"email": "admin@example.com", "password": "guess"},
                               **_ip("192.0.2.50"))
        assert response.status_code == 401
    throttled = client.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"},
                            **_ip("192.0.2.50"))
    _assert_429(throttled, json=False)
    assert "Too many" in throttled.get_data(as_text=True)
    assert "session" not in throttled.headers.get("Set-Cookie", "")  # no sign-in while throttled
    # the sign-in page itself (GET) still loads, and another address can still sign in
    assert client.get("/admin/login", **_ip("192.0.2.50")).status_code == 200
    ok = lapp.test_client().post("/admin/login", data={"email": "admin@example.com",
                                                       "password": "correct horse battery"}, **_ip("192.0.2.51"))
    assert ok.status_code in (302, 303)


def test_forwarded_for_is_ignored_without_trusted_proxies(lapp, sim):
    client = lapp.test_client()
    codes = []
    for i in range(7):
        # a client making up a new X-Forwarded-For per request still hits its own limit
        response = client.post("/api/push/subscriptions", json=sim_subscription(lapp, sim),
                               headers={"X-Forwarded-For": f"10.9.8.{i}"}, **_ip("198.51.100.20"))
        codes.append(response.status_code)
    assert codes == [201] * 5 + [429] * 2


def test_forwarded_for_from_a_trusted_proxy_is_the_client(tmp_path, sim):
    app = limited_app(tmp_path, f"sqlite:///{tmp_path / 'p.db'}", sim, RATELIMIT_SUBSCRIBE="2 per minute",
                      TRUSTED_PROXIES=1)
    client = app.test_client()
    proxy = _ip("10.0.0.2")  # every request arrives from the reverse proxy

    def post(forwarded: str):
        return client.post("/api/push/subscriptions", json=sim_subscription(app, sim),
                           headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"}, **proxy)

    assert [post("203.0.113.1").status_code for _ in range(3)] == [201, 201, 429]
    assert post("203.0.113.2").status_code == 201  # another visitor behind the same proxy
    # with one trusted proxy only the last hop counts: a forged first entry changes nothing
    assert post("1.2.3.4, 203.0.113.1").status_code == 429


def test_redis_down_never_breaks_subscribing_and_limits_come_back(tmp_path, sim):
    with PrivateRedis(tmp_path) as redis_server:
        app = limited_app(tmp_path, f"sqlite:///{tmp_path / 'r.db'}", sim, RATELIMIT_STORAGE_URI=redis_server.url,
                          RATELIMIT_SUBSCRIBE="3 per minute")
        client = app.test_client()

        def post(ip: str):
            return client.post("/api/push/subscriptions", json=sim_subscription(app, sim), **_ip(ip))

        assert post("192.0.2.10").status_code == 201
        redis_server.stop()
        # Redis is gone: requests are still answered, and limited by the in-memory fallback
        codes = [post("192.0.2.11").status_code for _ in range(4)]
        assert codes == [201, 201, 201, 429]
        redis_server.start()
        # Once Redis answers again the limiter goes back to it (it re-checks with a backoff)
        deadline = time.monotonic() + 60
        while not Redis.from_url(redis_server.url).keys("*"):
            assert time.monotonic() < deadline, "the limiter never went back to Redis"
            post("192.0.2.12")
            time.sleep(0.5)
    assert _count(app) >= 5


def test_a_mistyped_limit_refuses_to_start(tmp_path, sim):
    from statuspage.config import ConfigError

    with pytest.raises(ConfigError, match="RATELIMIT_SUBSCRIBE"):
        limited_app(tmp_path, f"sqlite:///{tmp_path / 'bad.db'}", sim, RATELIMIT_SUBSCRIBE="lots per minute")
