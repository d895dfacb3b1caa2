"""Plain helpers of the push tests (fixtures are in tests/push/conftest.py): apps wired to the
push-service simulator (eager jobs or the real RQ worker on real Redis), subscribing through the
public API, running a burst worker, moving RQ's scheduled jobs forward in time, reading rows back.
Import it as `from tests.push import helpers as ph`."""
from __future__ import annotations

import os
import secrets
import socket
import time
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from statuspage.extensions import db
from statuspage.models import Delivery, Event, Subscription
from statuspage.push.crypto import b64url_encode, public_key_b64
from statuspage.push.delivery import close_senders
from statuspage.push.simulator import PushSimulator, SimSubscription
from tests.conftest import TEST_SECRET, Api, _dispose, create_admin_token, make_app

__all__ = [
    "PUSH_REDIS_URL", "TEST_SECRET", "Api", "browser_subscription", "build_app",
    "create_admin_token", "delivery_rows", "dispose", "event_rows", "free_port", "generate_keys", "make_app",
    "make_due", "queue", "run_worker", "scheduled_jobs", "sub_row", "subscribe", "time_travel_events",
]


# Not the shared fixtures' db 13, which every test using `redis_url` flushes: a test run of someone
# else's on the same machine would wipe this one's queued jobs mid-test. Nothing here flushes; each
# app gets a queue of its own (see build_app) whose keys dispose() deletes.
PUSH_REDIS_URL = os.environ.get("TEST_PUSH_REDIS_URL", "redis://127.0.0.1:6379/12")


def build_app(kind: str, tmp_path, pg_database: str, sim: PushSimulator | None, *, redis_url: str | None = None,
              **overrides: Any):
    """An app on SQLite or PostgreSQL that may contact `sim`; with `redis_url`, jobs go to RQ."""
    url = f"sqlite:///{tmp_path / 'push.db'}" if kind == "sqlite" else pg_database
    config: dict[str, Any] = {"PUSH_EXTRA_ORIGINS": [sim.origin] if sim else []}
    if sim is not None and sim.tls:
        config["PUSH_CA_BUNDLE"] = sim.cert_path
    if redis_url:
        # A queue of the test's own: other test runs sharing this Redis never take its jobs.
        config.update(REDIS_URL=redis_url, JOBS_EAGER=False, RQ_QUEUE=f"push-test-{secrets.token_hex(4)}")
    config.update(overrides)
    return make_app(url, tmp_path, **config)


def dispose(app) -> None:
    runner = app.extensions.get("statuspage_runner")
    if runner is not None:
        # The embedded job thread has no stop(); make it inert so its periodic sweeper never
        # touches the shared PostgreSQL test database on behalf of a later test.
        runner._execute = lambda path, args: None
    close_senders()
    name = app.config.get("RQ_QUEUE", "")
    if app.config.get("REDIS_URL") and name.startswith("push-test-"):
        try:
            conn = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=1)
            keys = list(conn.scan_iter(match=f"*{name}*"))
            if keys:
                conn.delete(*keys)
        except RedisConnectionError:
            pass  # a test's own redis-server that is already stopped
    _dispose(app)


def time_travel_events(app, seconds: float) -> None:
    """Move every event's timestamps `seconds` into the past (debounce windows, sweeper age)."""
    delta = timedelta(seconds=seconds)
    with app.app_context():
        for event in db.session.execute(select(Event)).scalars():
            event.created_at -= delta
            event.deliver_after -= delta
        db.session.commit()


def browser_subscription(endpoint: str | None = None) -> dict[str, Any]:
    """What PushSubscription.toJSON() gives: a fresh P-256 key and a 16-byte auth secret (for
    endpoints that are validated but never contacted; FCM's by default)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return {"endpoint": endpoint or "https://fcm.googleapis.com/fcm/send/" + secrets.token_urlsafe(16),
            "expirationTime": None,
            "keys": {"p256dh": public_key_b64(key), "auth": b64url_encode(secrets.token_bytes(16))}}


def generate_keys(app) -> str:
    """`flask vapid generate`; returns the public key (the command's last line)."""
    result = app.test_cli_runner().invoke(args=["vapid", "generate"])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


def subscribe(client, sim: PushSimulator, public_key: str, *, user_agent: str | None = None,
              **extra: Any) -> tuple[SimSubscription, int]:
    """A browser subscribes through POST /api/push/subscriptions; returns (sim subscription, id)."""
    sub = sim.new_subscription(public_key)
    headers = {"User-Agent": user_agent} if user_agent else {}
    response = client.post("/api/push/subscriptions", json={**sub.to_json(), **extra}, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return sub, response.json["id"]


def queue(app) -> Queue:
    return Queue(app.config["RQ_QUEUE"], connection=Redis.from_url(app.config["REDIS_URL"]))


def run_worker(app) -> None:
    """`flask worker --burst`: the real RQ worker drains the queue and due scheduled jobs."""
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, (result.output, result.exception)


def scheduled_jobs(app) -> list[tuple[Any, float]]:
    """(job, unix time it is scheduled for) for every job waiting in RQ's scheduler."""
    q = queue(app)
    registry = ScheduledJobRegistry(queue=q)
    out = []
    for job_id, score in q.connection.zrange(registry.key, 0, -1, withscores=True):
        out.append((q.fetch_job(job_id.decode()), score))
    return out


def make_due(app) -> int:
    """Time travel for RQ's scheduler: every scheduled job becomes due now (no sleeping in tests)."""
    q = queue(app)
    registry = ScheduledJobRegistry(queue=q)
    ids = [j.decode() for j in q.connection.zrange(registry.key, 0, -1)]
    if ids:
        q.connection.zadd(registry.key, {job_id: time.time() - 1 for job_id in ids})
    return len(ids)


def sub_row(app, sub_id: int) -> Subscription:
    with app.app_context():
        row = db.session.get(Subscription, sub_id)
        db.session.expunge(row)
        return row


def event_rows(app, event_type: str | None = None) -> list[Event]:
    with app.app_context():
        query = select(Event).order_by(Event.id)
        if event_type:
            query = query.where(Event.type == event_type)
        rows = list(db.session.execute(query).scalars())
        db.session.expunge_all()
        return rows


def delivery_rows(app, event_id: int) -> dict[int, Delivery]:
    """subscription id -> Delivery row for one event."""
    with app.app_context():
        rows = list(db.session.execute(select(Delivery).where(Delivery.event_id == event_id)).scalars())
        db.session.expunge_all()
        return {d.subscription_id: d for d in rows}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
