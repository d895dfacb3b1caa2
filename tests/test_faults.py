"""Faults: a worker killed in the middle of a fan-out, PostgreSQL unavailable during a batch, a push
service that hangs or answers 429/5xx for a long time, and a flood of 100,000 dead subscriptions.

The worker tests run the real `flask --app app worker` as a subprocess against a redis-server of
their own (started and stopped by the test) and the session's PostgreSQL database; the push
service is the project's simulator. (Redis stopped while an admin posts is in test_push_delivery.)
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text

from statuspage.extensions import db
from statuspage.jobs import JobName, run_delayed_jobs
from statuspage.models import AdminAlert, Delivery, Event, Subscription
from statuspage.push import delivery
from statuspage.push.retry import RetryPolicy
from statuspage.push.simulator import PushSimulator
from tests.conftest import PG_ADMIN_URL, TEST_SECRET, Api, create_admin_token, make_app
from tests.hardening_support import PrivateRedis, sim_subscription

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _db_name(pg_database: str) -> str:
    return pg_database.rsplit("/", 1)[1]


def _worker_env(tmp_path, pg_database: str, redis_url: str, sim: PushSimulator, **extra: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH_", "RATELIMIT_", "FLASK_"))}
    env.update({
        "DATABASE_URL": pg_database, "REDIS_URL": redis_url, "SECRET_KEY": TEST_SECRET,
        "SITE_URL": "https://status.example.com", "PUSH_EXTRA_ORIGINS": sim.origin, "PUSH_DEBOUNCE_SECONDS": "0",
        "SWEEP_INTERVAL": "3600", "INSTANCE_PATH": str(tmp_path / "worker-instance"), "LOG_LEVEL": "WARNING",
        "RATELIMIT_ENABLED": "0", "PYTHONUNBUFFERED": "1",
    })
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", *args], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _rq_app(tmp_path, pg_database, redis_url, sim, **overrides):
    return make_app(pg_database, tmp_path, REDIS_URL=redis_url, JOBS_EAGER=False,
                    PUSH_EXTRA_ORIGINS=[sim.origin], **overrides)


def _subscribe(app, sim, n: int) -> list[dict]:
    client = app.test_client()
    bodies = [sim_subscription(app, sim) for _ in range(n)]
    for body in bodies:
        assert client.post("/api/push/subscriptions", json=body).status_code == 201
    return bodies


def _post_incident(app, name: str = "Database down") -> None:
    api = Api(app.test_client(), create_admin_token(app))
    response = api.post("/api/v1/incidents", json={"name": name, "body": "We are looking into it."})
    assert response.status_code == 201, response.get_json()


def _rows(app, query):
    with app.app_context():
        rows = db.session.execute(query).all()
        db.session.remove()
    return rows


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _outcomes(app) -> dict[str, tuple[str, str | None]]:
    rows = _rows(app, select(Subscription.endpoint, Delivery.outcome, Delivery.reason)
                 .join(Delivery, Delivery.subscription_id == Subscription.id))
    return {endpoint.rsplit("/", 1)[1]: (outcome, reason) for endpoint, outcome, reason in rows}


# --- (a) a worker killed with SIGKILL in the middle of a fan-out ------------------------------------

def test_worker_killed_mid_fan_out_restart_finishes_and_nobody_gets_it_twice(tmp_path, pg_database, sim):
    with PrivateRedis(tmp_path) as redis_server:
        app = _rq_app(tmp_path, pg_database, redis_server.url, sim, PUSH_BATCH_SIZE=5)
        bodies = _subscribe(app, sim, 40)
        tokens = [b["endpoint"].rsplit("/", 1)[1] for b in bodies]
        _post_incident(app)  # fan_out is now queued in Redis; nothing is sent from the request
        sim.set_delay(0.25)  # each push takes a while, so the kill lands inside a batch
        env = _worker_env(tmp_path, pg_database, redis_server.url, sim, PUSH_BATCH_SIZE=5, PUSH_CONCURRENCY=1)
        log = tmp_path / "worker.log"
        worker = _start_worker(env, log)
        try:
            sim.wait_for(7, timeout=90)  # batch 1 done, batch 2 half sent
        finally:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        in_flight = {token for token, (outcome, _) in _outcomes(app).items() if outcome == "sending"}
        assert in_flight, "the kill should have interrupted a batch"
        # A restarted worker (burst: drain and exit). Its sweep takes over work that made no progress
        # for PUSH_STALL_SECONDS: rows the dead worker left 'sending' are failed, never resent.
        time.sleep(2.5)  # let the stall threshold below pass (and the request cut off by the kill land)
        before_restart = collections.Counter(m.token for m in sim.received())
        sim.set_delay(0)
        env["PUSH_STALL_SECONDS"] = "2"
        restarted = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"], cwd=ROOT,
                                   env=env, capture_output=True, text=True, timeout=180)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        # the resume job the sweep queued may have run before the last batches: sweep once more
        subprocess.run([sys.executable, "-m", "flask", "--app", "app", "sweep"], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=120)
        subprocess.run([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=180)

    received = collections.Counter(m.token for m in sim.received())
    assert max(received.values()) == 1, "somebody got the message twice"
    outside = [t for t in tokens if t not in in_flight]
    assert all(received[t] == 1 for t in outside), [t for t in outside if received[t] != 1]
    assert all(received[t] == before_restart[t] for t in in_flight)  # the interrupted batch was not resent
    outcomes = _outcomes(app)
    for token in in_flight:
        outcome, reason = outcomes[token]
        assert outcome == "failed" and reason.startswith("interrupted"), (token, outcome, reason)
    for token in outside:
        assert outcomes[token][0] == "sent"
    [(state, sent, failed, queued)] = _rows(app, select(Event.state, Event.sent_count, Event.failed_count,
                                                        Event.queued_count))
    assert (state, queued) == ("done", 40)
    assert sent == len(outside) and failed == len(in_flight)


# --- (b) the database goes away during a batch -----------------------------------------------------

def _set_connections(pg_database: str, allowed: bool) -> None:
    name = _db_name(pg_database)
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))


def _count_sending(pg_database: str) -> int:
    with psycopg.connect(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + _db_name(pg_database), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM deliveries WHERE outcome = 'sending'").fetchone()[0]


def test_database_down_while_a_batch_is_sending_results_are_recorded_when_it_returns(tmp_path, pg_database, sim):
    with PrivateRedis(tmp_path) as redis_server:
        app = _rq_app(tmp_path, pg_database, redis_server.url, sim)
        bodies = _subscribe(app, sim, 10)
        _post_incident(app)
        sim.set_delay(1.5)
        env = _worker_env(tmp_path, pg_database, redis_server.url, sim, PUSH_CONCURRENCY=10)
        log = tmp_path / "worker.log"
        worker = _start_worker(env, log)
        try:
            _wait(lambda: _count_sending(pg_database) == 10, 60, "the batch to claim its rows")
            _set_connections(pg_database, False)  # every connection cut, no new ones
            try:
                sim.wait_for(10, timeout=30)  # the pushes still go out
                time.sleep(2)  # ...and the worker finds the database gone when it records them
            finally:
                _set_connections(pg_database, True)
            _wait(lambda: _rows(app, select(Event.state))[0][0] == "done", 90, "the event to finish")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    assert "database unavailable while recording 10 results" in log.read_text()
    received = collections.Counter(m.token for m in sim.received())
    assert sorted(received.values()) == [1] * 10
    assert set(_outcomes(app).values()) == {("sent", None)}
    [(sent, failed)] = _rows(app, select(Event.sent_count, Event.failed_count))
    assert (sent, failed) == (10, 0)
    assert len(bodies) == 10


POLICY = RetryPolicy()  # the defaults, which these apps run with
JOB_FAILED = "exception raised while executing (statuspage.push.delivery.fan_out)"


def test_database_down_when_the_job_starts_rq_retries_it(tmp_path, pg_database, sim):
    with PrivateRedis(tmp_path) as redis_server:
        app = _rq_app(tmp_path, pg_database, redis_server.url, sim)
        _subscribe(app, sim, 10)
        _post_incident(app)  # fan_out queued while no worker runs
        env = _worker_env(tmp_path, pg_database, redis_server.url, sim)
        log = tmp_path / "worker.log"
        _set_connections(pg_database, False)
        try:
            worker = _start_worker(env, log)  # starts although its first sweep cannot reach the database
            _wait(lambda: JOB_FAILED in log.read_text(), 60, "the fan-out job to fail on the database")
        finally:
            _set_connections(pg_database, True)
        try:
            sim.wait_for(10, timeout=120)  # RQ's Retry (10 s) runs the job again: now it works
            _wait(lambda: _rows(app, select(Event.state))[0][0] == "done", 60, "the event to finish")
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    text_log = log.read_text()
    assert "initial sweep failed; the worker starts anyway" in text_log
    assert text_log.count(JOB_FAILED) == 1  # failed once on the database, then the retry succeeded
    received = collections.Counter(m.token for m in sim.received())
    assert sorted(received.values()) == [1] * 10


# --- (c), (d) push services that hang or refuse for a long time --------------------------------------

def _eager_app(tmp_path, pg_database, sim, **overrides):
    return make_app(pg_database, tmp_path, PUSH_EXTRA_ORIGINS=[sim.origin], **overrides)


def _retry_rounds(app) -> list[list[float]]:
    """Run the delayed retry jobs round by round (eager mode); returns each round's delays."""
    rounds = []
    while app.extensions.get("statuspage_delayed"):
        now = time.monotonic()
        rounds.append([round(due - now) for due, _, _ in app.extensions["statuspage_delayed"]])
        with app.app_context():
            run_delayed_jobs(app)
            db.session.remove()
        assert len(rounds) < 20, "retry storm"
    return rounds


def test_hanging_push_service_times_out_and_backs_off_with_bounded_attempts(tmp_path, pg_database, sim):
    app = _eager_app(tmp_path, pg_database, sim, PUSH_TIMEOUT=0.5)
    bodies = _subscribe(app, sim, 5)
    sim.set_delay(1.5)  # longer than PUSH_TIMEOUT: the service accepts the connection and hangs
    _post_incident(app)
    rounds = _retry_rounds(app)
    # one retry job per round for the whole batch (not one per subscriber), delays growing
    assert [len(r) for r in rounds] == [1] * (POLICY.max_attempts - 1)
    assert [r[0] for r in rounds] == list(POLICY.backoff)
    rows = _rows(app, select(Delivery.outcome, Delivery.attempts, Delivery.reason))
    assert len(rows) == len(bodies)
    for outcome, attempts, reason in rows:
        assert (outcome, attempts) == ("failed", POLICY.max_attempts)
        assert reason == f"gave up after {POLICY.max_attempts} attempts: timeout after 0.5s"
    [(state, failed)] = _rows(app, select(Event.state, Event.failed_count))
    assert (state, failed) == ("done", 5)
    [(alert_reason, alert_count)] = _rows(app, select(AdminAlert.reason, AdminAlert.count))
    assert alert_reason.startswith("gave up after") and alert_count == 5


@pytest.mark.parametrize(("status", "retry_after", "delays", "reason"), [
    (503, None, list(POLICY.backoff), "503 Service Unavailable"),
    (500, None, list(POLICY.backoff), "500 Internal Server Error"),
    (429, 900, [900, 900, 900, 900, 1800], "429 Too Many Requests"),  # Retry-After honoured, never shorter
    (429, 10**9, [POLICY.max_delay] * 5, "429 Too Many Requests"),  # ...but capped
])
def test_push_service_refusing_for_a_long_time_backs_off_then_fails_with_reason(tmp_path, pg_database, sim, status,
                                                                                  retry_after, delays, reason):
    app = _eager_app(tmp_path, pg_database, sim)
    bodies = _subscribe(app, sim, 6)
    refusing = [b["endpoint"].rsplit("/", 1)[1] for b in bodies[:3]]
    healthy = [b["endpoint"].rsplit("/", 1)[1] for b in bodies[3:]]
    for token in refusing:
        sim.respond_with(token, status, retry_after=retry_after)  # for as long as we keep asking
    _post_incident(app)
    rounds = _retry_rounds(app)
    assert rounds == [[d] for d in delays]
    attempts = collections.Counter(a.token for a in sim.attempts())
    assert all(attempts[t] == POLICY.max_attempts for t in refusing)
    assert all(attempts[t] == 1 for t in healthy)  # retries never touch those already delivered
    received = collections.Counter(m.token for m in sim.received())
    assert all(received[t] == 1 for t in healthy) and not any(received[t] for t in refusing)
    outcomes = _outcomes(app)
    for token in refusing:
        assert outcomes[token] == ("failed", f"gave up after {POLICY.max_attempts} attempts: {reason}")
    [(state, sent, failed)] = _rows(app, select(Event.state, Event.sent_count, Event.failed_count))
    assert (state, sent, failed) == ("done", 3, 3)


# --- (e) a flood of dead subscriptions ------------------------------------------------------------

def _insert_dead(app, count: int, days_old: int, p256dh: str, auth: str) -> None:
    with app.app_context():
        db.session.execute(text(
            "INSERT INTO subscriptions (endpoint, p256dh, auth, all_components, browser, status, status_reason, "
            "created_at, updated_at) "
            "SELECT 'https://fcm.googleapis.com/fcm/send/dead-' || :tag || '-' || g, :p, :a, true, 'Chrome', "
            "'expired', 'push service answered 410', now() - make_interval(days => :d), "
            "now() - make_interval(days => :d) FROM generate_series(1, :n) g"),
            {"tag": f"{days_old}-{time.time_ns()}", "p": p256dh, "a": auth, "d": days_old, "n": count})
        db.session.execute(text("ANALYZE subscriptions"))
        db.session.commit()
        db.session.remove()


class _StatementCounter:
    def __init__(self, engine) -> None:
        self.engine, self.count = engine, 0

    def __call__(self, *args) -> None:
        self.count += 1

    def __enter__(self):
        sa_event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *exc) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self)


def _measured_incident(app, monkeypatch, name: str) -> tuple[int, int]:
    """(SQL statements, batch jobs) for posting one incident and delivering it (eager jobs)."""
    batches = []
    original = delivery.enqueue

    def counting_enqueue(path, *args, **kwargs):
        if path == JobName.SEND_BATCH:
            batches.append(args)
        return original(path, *args, **kwargs)

    monkeypatch.setattr(delivery, "enqueue", counting_enqueue)
    with app.app_context():
        engine = db.engine
    with _StatementCounter(engine) as counter:
        _post_incident(app, name)
    monkeypatch.setattr(delivery, "enqueue", original)
    return counter.count, len(batches)


def test_flood_of_expired_subscriptions_is_ignored_by_fan_out_and_pruned(tmp_path, pg_database, sim, monkeypatch):
    app = _eager_app(tmp_path, pg_database, sim)
    bodies = _subscribe(app, sim, 5)
    keys = bodies[0]["keys"]
    _post_incident(app, "warm-up")  # first-use work (trigger rows, settings) out of the measurement
    baseline = _measured_incident(app, monkeypatch, "before the flood")
    _insert_dead(app, 50_000, 60, keys["p256dh"], keys["auth"])
    bodies += _subscribe(app, sim, 5)  # live ids on both sides of the dead ones
    _insert_dead(app, 50_000, 60, keys["p256dh"], keys["auth"])
    assert _rows(app, select(func.count(Subscription.id)).where(Subscription.status == "expired"))[0][0] == 100_000
    sim.reset()
    statements, batches = _measured_incident(app, monkeypatch, "during the flood")
    # 10 live among 100,000 dead: one batch, and no more SQL than with 5 live and none dead
    assert batches == 1 == baseline[1]
    assert statements == baseline[0]
    received = collections.Counter(m.token for m in sim.received())
    assert sorted(received.values()) == [1] * 10
    with app.app_context():
        plan = "\n".join(r[0] for r in db.session.execute(text(
            "EXPLAIN SELECT id FROM subscriptions WHERE status = 'active' AND id > 0 ORDER BY id LIMIT 1000")))
        db.session.remove()
    assert "Index" in plan and "Seq Scan" not in plan, plan

    # cleaning: the CLI removes old dead rows (and their deliveries), never live or recent ones
    _insert_dead(app, 3, 1, keys["p256dh"], keys["auth"])  # expired yesterday: kept for now
    result = app.test_cli_runner().invoke(args=["push", "prune", "--older-than-days", "30"])
    assert result.exit_code == 0, result.output
    assert "Deleted 100000 " in result.output
    counts = dict(_rows(app, select(Subscription.status, func.count()).group_by(Subscription.status)))
    assert counts == {"active": 10, "expired": 3}

    # and the sweeper does the same a little at a time
    _insert_dead(app, 1500, 45, keys["p256dh"], keys["auth"])
    from statuspage.sweeper import sweep

    with app.app_context():
        first, second, third = sweep()["pruned"], sweep()["pruned"], sweep()["pruned"]
        db.session.remove()
    assert (first, second, third) == (1000, 500, 0)
