"""Visitor Web Push end to end with the real RQ worker on real Redis and the push-service
simulator: a browser subscribes through the public API, an admin posts through /api/v1, a burst
worker delivers, and the simulator (which verifies VAPID and decrypts like a browser) tells what
arrived. Every push service answer is exercised: 201, 404/410, 429 + Retry-After, 5xx, 400-413."""
from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from sqlalchemy import select

from statuspage.extensions import db
from statuspage.jobs import JobName
from statuspage.models import AdminAlert, Delivery, Event
from statuspage.push.crypto import b64url_decode
from statuspage.push.simulator import PushSimulator
from statuspage.worker import AppWorker
from tests.hardening_support import PrivateRedis
from tests.push import helpers as ph

BATCH_JOB = JobName.SEND_BATCH


def _post_incident(api, **fields) -> int:
    body = {"name": "Database unavailable", "status": "investigating", "impact": "major",
            "body": "We are **looking** into [it](https://example.com)."}
    body.update(fields)
    r = api.post("/api/v1/incidents", json=body)
    assert r.status_code == 201, r.json
    return r.json["id"]


def _alerts(app) -> dict[str, AdminAlert]:
    with app.app_context():
        rows = list(db.session.execute(select(AdminAlert)).scalars())
        db.session.expunge_all()
        return {a.reason: a for a in rows}


# --- the happy path, every field ----------------------------------------------------------------

def test_incident_reaches_subscriber_with_every_payload_field_and_header(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    sub, sub_id = ph.subscribe(rq_api.client, sim, public_key,
                               user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36")
    subscribed_active_at = ph.sub_row(rq_app, sub_id).last_active_at

    incident_id = _post_incident(rq_api)
    # Nothing is sent from the request: the event waits in the queue for a worker.
    assert sim.attempts() == []
    [event] = ph.event_rows(rq_app)
    assert event.state == "dispatched"

    before = time.time()
    ph.run_worker(rq_app)

    [message] = sim.received(sub.token)
    assert message.payload == {
        "title": "Example Status: Database unavailable",
        "body": "Investigating — We are looking into it.",
        "icon": "https://status.example.com/static/icons/icon-192.png",
        "badge": "https://status.example.com/static/icons/badge-96.png",
        "url": f"https://status.example.com/incidents/{incident_id}",
        "tag": f"incident-{incident_id}",
        "event": "incident.created",
        "event_id": event.id,
        "timestamp": int(event.created_at.replace(tzinfo=UTC).timestamp() * 1000),
    }
    headers = message.headers
    assert headers["TTL"] == "86400"
    assert headers["Urgency"] == "high"
    assert headers["Topic"] == f"incident-{incident_id}"
    assert headers["Content-Encoding"] == "aes128gcm"
    assert headers["Content-Type"] == "application/octet-stream"
    scheme, _, params = headers["Authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(p.split("=", 1) for p in params.split(","))
    assert fields["k"] == public_key and fields["t"].count(".") == 2
    assert message.claims["aud"] == sim.origin
    assert before < message.claims["exp"] <= time.time() + 24 * 3600
    assert message.claims["sub"] == "https://status.example.com"
    assert message.body_len <= 4096

    [event] = ph.event_rows(rq_app)
    assert (event.state, event.queued_count, event.sent_count, event.expired_count, event.failed_count) == (
        "done", 1, 1, 0, 0)
    [delivery] = ph.delivery_rows(rq_app, event.id).values()
    assert (delivery.subscription_id, delivery.outcome, delivery.status_code, delivery.attempts) == (
        sub_id, "sent", 201, 1)
    row = ph.sub_row(rq_app, sub_id)
    assert row.status == "active" and row.browser == "Chrome"
    assert row.last_active_at > subscribed_active_at

    # The admin's view agrees with what the simulator saw.
    [listed] = [e for e in rq_api.get("/api/v1/events").json if e["id"] == event.id]
    assert listed["counts"] == {"queued": 0, "sent": 1, "expired": 0, "failed": 0, "targeted": 1,
                                "shown": 0, "opened": 0}


def test_tls_push_service_verified_with_ca_bundle(tmp_path, pg_database, redis_url):
    with PushSimulator(tls=True) as tls_sim:
        app = ph.build_app("sqlite", tmp_path, pg_database, tls_sim, redis_url=redis_url)
        try:
            assert app.config["PUSH_CA_BUNDLE"] == tls_sim.cert_path
            assert tls_sim.origin.startswith("https://")
            api = ph.Api(app.test_client(), ph.create_admin_token(app))
            public_key = ph.generate_keys(app)
            sub, _ = ph.subscribe(api.client, tls_sim, public_key)
            incident_id = _post_incident(api, name="TLS check")
            ph.run_worker(app)
            [message] = tls_sim.received(sub.token)
            assert message.payload["title"] == "Example Status: TLS check"
            assert message.payload["url"] == f"https://status.example.com/incidents/{incident_id}"
            assert message.claims["aud"] == tls_sim.origin
        finally:
            ph.dispose(app)


def test_tls_push_service_with_untrusted_certificate_fails_and_alerts(tmp_path, pg_database, redis_url):
    with PushSimulator(tls=True) as tls_sim:
        app = ph.build_app("sqlite", tmp_path, pg_database, tls_sim, redis_url=redis_url, PUSH_CA_BUNDLE=None)
        try:
            api = ph.Api(app.test_client(), ph.create_admin_token(app))
            public_key = ph.generate_keys(app)
            sub, sub_id = ph.subscribe(api.client, tls_sim, public_key)
            _post_incident(api)
            ph.run_worker(app)
            assert tls_sim.received() == []
            [event] = ph.event_rows(app)
            assert (event.state, event.failed_count) == ("done", 1)
            delivery = ph.delivery_rows(app, event.id)[sub_id]
            assert delivery.outcome == "failed"
            assert delivery.reason.startswith("TLS certificate verification failed")
            assert "TLS certificate verification failed" in _alerts(app)
            assert ph.scheduled_jobs(app) == []  # a bad certificate is not retried
        finally:
            ph.dispose(app)


# --- every answer a push service can give ------------------------------------------------------

def test_each_push_service_answer_sets_the_right_state(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    names = ["ok", "gone", "missing", "limited", "flaky", "bad", "unauthorized", "forbidden", "too_large"]
    subs = {name: ph.subscribe(rq_api.client, sim, public_key) for name in names}
    token = {name: s.token for name, (s, _) in subs.items()}
    sid = {name: i for name, (_, i) in subs.items()}
    sim.expire(token["gone"])  # 410
    sim.remove(token["missing"])  # 404
    sim.respond_with(token["limited"], 429, retry_after=120, times=1)
    sim.respond_with(token["flaky"], 503, times=1)
    for name, status in (("bad", 400), ("unauthorized", 401), ("forbidden", 403), ("too_large", 413)):
        sim.respond_with(token[name], status)

    incident_id = _post_incident(rq_api)
    ph.run_worker(rq_app)
    sent_at = time.time()

    [event] = ph.event_rows(rq_app)
    rows = ph.delivery_rows(rq_app, event.id)
    outcome = {name: (rows[sid[name]].outcome, rows[sid[name]].status_code) for name in names}
    assert outcome == {
        "ok": ("sent", 201), "gone": ("expired", 410), "missing": ("expired", 404),
        "limited": ("retry", 429), "flaky": ("retry", 503),
        "bad": ("failed", 400), "unauthorized": ("failed", 401), "forbidden": ("failed", 403),
        "too_large": ("failed", 413),
    }
    assert rows[sid["bad"]].reason == "400 Bad Request: forced 400 by the simulator"
    assert rows[sid["limited"]].reason.startswith("will retry: 429")  # admins see why it waits
    assert rows[sid["too_large"]].reason.startswith("413 Payload Too Large")
    for name in ("gone", "missing"):
        row = ph.sub_row(rq_app, sid[name])
        assert row.status == "expired" and row.status_reason.startswith("push service answered 4")
    for name in ("ok", "limited", "flaky", "bad", "unauthorized", "forbidden", "too_large"):
        assert ph.sub_row(rq_app, sid[name]).status == "active"
    assert (event.state, event.queued_count, event.sent_count, event.expired_count, event.failed_count) == (
        "sending", 9, 1, 2, 4)

    # Retry-After (120 s) wins over the first backoff step (5 s): both in the row and in RQ's scheduler.
    limited = rows[sid["limited"]]
    assert limited.next_attempt_at - limited.updated_at == timedelta(seconds=120)
    [(job, when)] = ph.scheduled_jobs(rq_app)
    assert job.func_name == BATCH_JOB
    assert job.args[0] == event.id and sorted(job.args[4]) == sorted([sid["limited"], sid["flaky"]])
    assert when >= sent_at + 100  # (sent_at is taken after the worker finished)

    # One admin alert per failure reason.
    alerts = _alerts(rq_app)
    assert set(alerts) == {"400 Bad Request", "401 Unauthorized", "403 Forbidden", "413 Payload Too Large"}
    assert all(a.alerts == 1 and a.count == 1 for a in alerts.values())
    page = rq_api.get("/api/v1/events").json
    assert [e["counts"] for e in page if e["id"] == event.id] == [
        {"queued": 2, "sent": 1, "expired": 2, "failed": 4, "targeted": 9, "shown": 0, "opened": 0}]

    # The retry comes due (time travel in RQ's scheduler instead of sleeping): sent exactly once.
    assert ph.make_due(rq_app) == 1
    ph.run_worker(rq_app)
    for name in ("limited", "flaky"):
        assert len(sim.received(token[name])) == 1
        assert len(sim.attempts(token[name])) == 2
    rows = ph.delivery_rows(rq_app, event.id)
    assert [(rows[sid[n]].outcome, rows[sid[n]].attempts) for n in ("limited", "flaky")] == [("sent", 2)] * 2
    [event] = ph.event_rows(rq_app)
    assert (event.state, event.sent_count, event.expired_count, event.failed_count) == ("done", 3, 2, 4)
    assert ph.scheduled_jobs(rq_app) == []

    # The next event never contacts the expired subscriptions; the failing ones fail again but
    # the admin is not alerted again within 10 minutes (the count still grows).
    r = rq_api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "identified", "body": "Found it."})
    assert r.status_code == 201
    ph.run_worker(rq_app)
    assert len(sim.attempts(token["gone"])) == 1 and len(sim.attempts(token["missing"])) == 1
    assert [m.payload["event"] for m in sim.received(token["ok"])] == ["incident.created", "incident.updated"]
    second = ph.event_rows(rq_app, "incident.updated")[0]
    assert (second.state, second.queued_count, second.sent_count, second.failed_count) == ("done", 7, 3, 4)
    alerts = _alerts(rq_app)
    assert all(a.alerts == 1 and a.count == 2 for a in alerts.values())

    # Ten minutes later the same reason alerts again.
    with rq_app.app_context():
        for alert in db.session.execute(select(AdminAlert)).scalars():
            alert.last_alerted_at -= timedelta(minutes=11)
        db.session.commit()
    r = rq_api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "monitoring", "body": "Fix is out."})
    assert r.status_code == 201
    ph.run_worker(rq_app)
    assert all(a.alerts == 2 and a.count == 3 for a in _alerts(rq_app).values())


def test_server_errors_back_off_then_give_up(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    sub, sub_id = ph.subscribe(rq_api.client, sim, public_key)
    sim.respond_with(sub.token, 502)  # until reset
    _post_incident(rq_api)
    ph.run_worker(rq_app)
    [event] = ph.event_rows(rq_app)
    delays, retry_jobs = [], []
    for _ in range(10):  # bounded: the policy allows 6 attempts
        scheduled = ph.scheduled_jobs(rq_app)
        if not scheduled:
            break
        [(job, _)] = scheduled
        retry_jobs.append((job.args[3], job.retries_left))
        delivery = ph.delivery_rows(rq_app, event.id)[sub_id]
        delays.append((delivery.next_attempt_at - delivery.updated_at).total_seconds())
        ph.make_due(rq_app)
        ph.run_worker(rq_app)
    assert delays == [5, 30, 120, 600, 1800]  # exponential backoff between the 6 attempts
    # Each retry job names its attempt (counted from 1, like Delivery.attempts) and, like a first
    # batch, is re-run by RQ if it raises.
    assert retry_jobs == [(2, 3), (3, 3), (4, 3), (5, 3), (6, 3)]
    assert len(sim.attempts(sub.token)) == 6
    assert sim.received() == []
    [event] = ph.event_rows(rq_app)
    delivery = ph.delivery_rows(rq_app, event.id)[sub_id]
    assert (delivery.outcome, delivery.attempts) == ("failed", 6)
    assert delivery.reason == "gave up after 6 attempts: 502 Bad Gateway"
    assert (event.state, event.failed_count) == ("done", 1)
    assert ph.sub_row(rq_app, sub_id).status == "active"  # a server error says nothing about the subscription


# --- idempotence ---------------------------------------------------------------------------------

@pytest.mark.app_config(PUSH_BATCH_SIZE=2)
def test_duplicated_batch_jobs_and_sweeper_resume_never_send_twice(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    subs = [ph.subscribe(rq_api.client, sim, public_key)[0] for _ in range(3)]
    _post_incident(rq_api)
    q = ph.queue(rq_app)

    # Run only the fan-out job, then deliver every batch job twice (as RQ may after a lost ack).
    with rq_app.app_context():
        AppWorker([q], connection=q.connection).work(burst=True, max_jobs=1, logging_level="WARNING")
    batches = q.get_jobs()
    assert [j.func_name for j in batches] == [BATCH_JOB, BATCH_JOB]  # 3 subscriptions, 2 per batch
    for job in batches:
        q.enqueue(job.func_name, *job.args)
    ph.run_worker(rq_app)
    assert [len(sim.received(s.token)) for s in subs] == [1, 1, 1]
    [event] = ph.event_rows(rq_app)
    assert (event.state, event.queued_count, event.sent_count) == ("done", 3, 3)
    assert len(ph.delivery_rows(rq_app, event.id)) == 3

    # The sweeper believes the event stalled and resumes it: still nothing is sent twice.
    with rq_app.app_context():
        [stalled] = db.session.execute(select(Event)).scalars()
        stalled.state, stalled.progress_at = "sending", stalled.created_at - timedelta(hours=1)
        db.session.commit()
    result = rq_app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0 and "'requeued': 1" in result.output
    ph.run_worker(rq_app)
    assert [len(sim.received(s.token)) for s in subs] == [1, 1, 1]
    [event] = ph.event_rows(rq_app)
    assert (event.state, event.sent_count) == ("done", 3)


def test_payload_decrypts_with_the_subscription_keys_only(rq_app, sim, rq_api):
    """The keys the browser registered are the ones the message is encrypted to (the simulator
    decrypts with the private key it kept; a different auth secret would fail with 400)."""
    public_key = ph.generate_keys(rq_app)
    sub, sub_id = ph.subscribe(rq_api.client, sim, public_key)
    row = ph.sub_row(rq_app, sub_id)
    assert b64url_decode(row.p256dh) == b64url_decode(sub.p256dh)
    assert b64url_decode(row.auth) == b64url_decode(sub.auth)
    _post_incident(rq_api, name="Ünïcödé ☃ outage", body="é☃𝄞" * 2000)
    ph.run_worker(rq_app)
    [message] = sim.received(sub.token)  # decrypted and JSON-decoded: still valid UTF-8
    assert message.payload["title"] == "Example Status: Ünïcödé ☃ outage"
    # The long body was cut on a character boundary to fit the 4096-byte limit.
    body = message.payload["body"]
    assert body.startswith("Investigating — é☃𝄞é☃𝄞") and body.endswith("…")
    assert message.body_len <= 4096 and len(message.plaintext) > 3500


# --- which events go out, to whom (eager jobs; the same job functions, run inline) ---------------

def _component(api, name: str) -> int:
    r = api.post("/api/v1/components", json={"name": name})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _events(sim, token) -> list[str]:
    return [m.payload["event"] for m in sim.received(token)]


def test_trigger_off_and_notify_false_send_nothing(eager_app, sim, eager_api):
    api = eager_api
    public_key = ph.generate_keys(eager_app)
    sub, _ = ph.subscribe(api.client, sim, public_key)

    r = api.put("/api/v1/triggers", json={"incident.created": {"enabled": False}})
    assert r.status_code == 200
    assert {t["event"]: t["enabled"] for t in r.json}["incident.created"] is False
    incident_id = _post_incident(api, name="Quiet one")
    [created] = ph.event_rows(eager_app, "incident.created")
    assert (created.state, created.state_reason) == ("skipped", "the incident.created trigger is off")
    assert sim.attempts() == []

    # Other triggers still send.
    r = api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "identified", "body": "Found."})
    assert r.status_code == 201
    assert _events(sim, sub.token) == ["incident.updated"]

    # notify=false: the admin chose silence for this change.
    r = api.post(f"/api/v1/incidents/{incident_id}/updates",
                 json={"status": "monitoring", "body": "Watching.", "notify": False})
    assert r.status_code == 201
    last = ph.event_rows(eager_app, "incident.updated")[-1]
    assert (last.state, last.notify) == ("skipped", False)
    assert _events(sim, sub.token) == ["incident.updated"]

    # Push switched off site-wide: nothing goes out either.
    assert api.put("/api/v1/push/settings", json={"enabled": False}).status_code == 200
    api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "resolved", "body": "Fixed."})
    [resolved] = ph.event_rows(eager_app, "incident.resolved")
    assert (resolved.state, resolved.state_reason) == ("skipped", "push notifications are disabled")
    assert _events(sim, sub.token) == ["incident.updated"]
    listed = {e["id"]: e for e in api.get("/api/v1/events").json}
    assert listed[created.id]["state"] == "skipped" and listed[created.id]["counts"]["sent"] == 0


def test_component_filters_are_respected(eager_app, sim, eager_api):
    api = eager_api
    public_key = ph.generate_keys(eager_app)
    database, website = _component(api, "Database"), _component(api, "Website")
    everything, _ = ph.subscribe(api.client, sim, public_key)
    db_only, _ = ph.subscribe(api.client, sim, public_key, components=[database])
    web_only, _ = ph.subscribe(api.client, sim, public_key, components=[website])
    explicit_empty, _ = ph.subscribe(api.client, sim, public_key, components=[])

    _post_incident(api, name="DB slow", component_ids=[database])
    assert [len(sim.received(s.token)) for s in (everything, db_only, web_only, explicit_empty)] == [1, 1, 0, 1]

    _post_incident(api, name="Website down", components={str(website): "major_outage"})
    assert [len(sim.received(s.token)) for s in (everything, db_only, web_only, explicit_empty)] == [2, 1, 1, 2]

    _post_incident(api, name="Everything is slow")  # no components: everyone hears about it
    assert [len(sim.received(s.token)) for s in (everything, db_only, web_only, explicit_empty)] == [3, 2, 2, 3]

    _post_incident(api, name="Both", component_ids=[database, website])
    assert [len(sim.received(s.token)) for s in (everything, db_only, web_only, explicit_empty)] == [4, 3, 3, 4]
    assert [m.payload["title"] for m in sim.received(web_only.token)] == [
        "Example Status: Website down", "Example Status: Everything is slow", "Example Status: Both"]


# --- flapping ----------------------------------------------------------------------------------------

def _enable_component_triggers(api) -> None:
    r = api.put("/api/v1/triggers", json={"component.down": {"enabled": True},
                                          "component.recovered": {"enabled": True}})
    assert r.status_code == 200


def _set_status(api, component_id: int, status: str) -> None:
    r = api.patch(f"/api/v1/components/{component_id}", json={"status": status})
    assert r.status_code == 200, r.json


def _close_debounce_window(app) -> None:
    """The debounce window passes (timestamps moved back) and the delayed fan-outs run."""
    from statuspage.jobs import run_delayed_jobs

    ph.time_travel_events(app, 120)
    with app.app_context():
        run_delayed_jobs(app)


@pytest.mark.app_config(PUSH_DEBOUNCE_SECONDS=60)
def test_component_flapping_inside_debounce_window_sends_nothing(eager_app, sim, eager_api):
    api = eager_api
    _enable_component_triggers(api)
    public_key = ph.generate_keys(eager_app)
    sub, _ = ph.subscribe(api.client, sim, public_key)
    api_component = _component(api, "API")

    _set_status(api, api_component, "major_outage")
    _set_status(api, api_component, "operational")
    with eager_app.app_context():
        from statuspage.jobs import run_delayed_jobs

        run_delayed_jobs(eager_app)  # still inside the window: the fan-outs wait again
    assert sim.attempts() == []
    assert [e.state for e in ph.event_rows(eager_app)] == ["dispatched", "dispatched"]

    _close_debounce_window(eager_app)
    assert sim.attempts() == []
    down, recovered = ph.event_rows(eager_app)
    assert (down.type, down.state) == ("component.down", "superseded")
    assert (recovered.type, recovered.state) == ("component.recovered", "skipped")
    assert ph.delivery_rows(eager_app, down.id) == {} and ph.delivery_rows(eager_app, recovered.id) == {}
    assert sub.token not in {a.token for a in sim.attempts()}


@pytest.mark.app_config(PUSH_DEBOUNCE_SECONDS=60)
def test_component_that_stays_down_notifies_once(eager_app, sim, eager_api):
    api = eager_api
    _enable_component_triggers(api)
    public_key = ph.generate_keys(eager_app)
    sub, _ = ph.subscribe(api.client, sim, public_key)
    api_component = _component(api, "API")

    # down, up, down again inside the window: only the settled state (down) is announced, once.
    _set_status(api, api_component, "partial_outage")
    _set_status(api, api_component, "operational")
    _set_status(api, api_component, "major_outage")
    _close_debounce_window(eager_app)
    [message] = sim.received(sub.token)
    assert message.payload["event"] == "component.down"
    assert message.payload["title"] == "API is down"
    assert message.payload["body"] == "Example Status: API — Major outage"
    assert message.payload["tag"] == f"component-{api_component}"
    assert message.headers["Topic"] == f"component-{api_component}"
    assert [e.state for e in ph.event_rows(eager_app)] == ["superseded", "superseded", "done"]

    # It stays down (a further change between down statuses is not news); a later recovery is.
    _set_status(api, api_component, "partial_outage")
    _close_debounce_window(eager_app)
    assert _events(sim, sub.token) == ["component.down"]
    _set_status(api, api_component, "operational")
    _close_debounce_window(eager_app)
    assert _events(sim, sub.token) == ["component.down", "component.recovered"]


def test_component_triggers_are_off_by_default(eager_app, sim, eager_api):
    api = eager_api
    public_key = ph.generate_keys(eager_app)
    ph.subscribe(api.client, sim, public_key)
    _set_status(api, _component(api, "API"), "major_outage")
    _close_debounce_window(eager_app)
    [event] = ph.event_rows(eager_app)
    assert (event.type, event.state) == ("component.down", "skipped")
    assert sim.attempts() == []


@pytest.mark.app_config(PUSH_DEBOUNCE_SECONDS=60)
def test_component_down_waits_in_rq_scheduler_for_the_debounce_window(rq_app, sim, rq_api):
    _enable_component_triggers(rq_api)
    public_key = ph.generate_keys(rq_app)
    sub, _ = ph.subscribe(rq_api.client, sim, public_key)
    _set_status(rq_api, _component(rq_api, "API"), "major_outage")
    [(job, when)] = ph.scheduled_jobs(rq_app)
    assert job.func_name == JobName.FAN_OUT and when > time.time() + 50
    ph.run_worker(rq_app)
    assert sim.attempts() == []  # not due yet
    ph.time_travel_events(rq_app, 120)
    ph.make_due(rq_app)
    ph.run_worker(rq_app)
    assert _events(sim, sub.token) == ["component.down"]


# --- Redis down while an admin posts -------------------------------------------------------------

@pytest.fixture
def own_redis(tmp_path) -> Iterator[PrivateRedis]:
    with PrivateRedis(tmp_path) as server:
        yield server


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_redis_down_while_posting_is_delivered_once_by_the_sweeper(kind, tmp_path, pg_database, sim, own_redis):
    app = ph.build_app(kind, tmp_path, pg_database, sim, redis_url=own_redis.url)
    try:
        api = ph.Api(app.test_client(), ph.create_admin_token(app))
        public_key = ph.generate_keys(app)
        sub, _ = ph.subscribe(api.client, sim, public_key)

        own_redis.stop()
        incident_id = _post_incident(api, name="Posted while Redis was down")
        assert api.get(f"/api/v1/incidents/{incident_id}").json["name"] == "Posted while Redis was down"
        [event] = ph.event_rows(app)
        assert (event.state, event.dispatched_at) == ("pending", None)
        result = app.test_cli_runner().invoke(args=["worker", "--burst"])
        assert result.exit_code != 0 and "cannot reach Redis" in result.output

        own_redis.start()
        ph.time_travel_events(app, 30)  # the sweeper leaves events younger than a few seconds alone
        result = app.test_cli_runner().invoke(args=["sweep"])
        assert result.exit_code == 0 and "'dispatched': 1" in result.output, result.output
        ph.run_worker(app)
        [message] = sim.received(sub.token)
        assert message.payload["title"] == "Example Status: Posted while Redis was down"
        [event] = ph.event_rows(app)
        assert (event.state, event.sent_count) == ("done", 1)

        result = app.test_cli_runner().invoke(args=["sweep"])
        assert result.exit_code == 0 and "'dispatched': 0" in result.output and "'requeued': 0" in result.output
        ph.run_worker(app)
        assert len(sim.received(sub.token)) == 1
    finally:
        ph.dispose(app)


def test_endpoint_is_checked_again_before_every_send(eager_app, sim, eager_api):
    """An origin removed from PUSH_EXTRA_ORIGINS after people subscribed is never contacted."""
    public_key = ph.generate_keys(eager_app)
    sub, sub_id = ph.subscribe(eager_api.client, sim, public_key)
    eager_app.config["PUSH_EXTRA_ORIGINS"] = []
    _post_incident(eager_api)
    assert sim.attempts() == []
    [event] = ph.event_rows(eager_app)
    assert (event.state, event.failed_count) == ("done", 1)
    assert ph.delivery_rows(eager_app, event.id)[sub_id].reason == "endpoint not allowed"
    assert "endpoint not allowed" in _alerts(eager_app)


@pytest.mark.app_config(PUSH_DEBOUNCE_SECONDS=60)
def test_flapping_after_an_announced_outage_sends_the_settled_state_only(eager_app, sim, eager_api):
    api = eager_api
    _enable_component_triggers(api)
    public_key = ph.generate_keys(eager_app)
    sub, _ = ph.subscribe(api.client, sim, public_key)
    cid = _component(api, "API")
    _set_status(api, cid, "major_outage")
    _close_debounce_window(eager_app)
    assert _events(sim, sub.token) == ["component.down"]

    # Up, down again inside the window: it settles down, which subscribers already know.
    _set_status(api, cid, "operational")
    _set_status(api, cid, "major_outage")
    _close_debounce_window(eager_app)
    assert _events(sim, sub.token) == ["component.down"]

    # Up, down, up inside the window: it settles up, which is news.
    _set_status(api, cid, "operational")
    _set_status(api, cid, "major_outage")
    _set_status(api, cid, "operational")
    _close_debounce_window(eager_app)
    assert _events(sim, sub.token) == ["component.down", "component.recovered"]

    # Down, up inside the window after that recovery: nothing (it settles where it was).
    _set_status(api, cid, "partial_outage")
    _set_status(api, cid, "operational")
    _close_debounce_window(eager_app)
    assert _events(sim, sub.token) == ["component.down", "component.recovered"]


def test_unsubscribed_while_waiting_for_retry_is_dropped_quietly(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    sub, sub_id = ph.subscribe(rq_api.client, sim, public_key)
    sim.respond_with(sub.token, 429, retry_after=30, times=1)
    _post_incident(rq_api)
    ph.run_worker(rq_app)
    assert rq_api.client.delete("/api/push/subscriptions", json={"endpoint": sub.endpoint}).status_code == 204

    ph.make_due(rq_app)
    ph.run_worker(rq_app)
    assert len(sim.attempts(sub.token)) == 1  # never contacted after unsubscribing
    [event] = ph.event_rows(rq_app)
    assert (event.state, event.sent_count, event.failed_count) == ("done", 0, 0)
    assert ph.delivery_rows(rq_app, event.id)[sub_id].outcome == "expired"
    assert _alerts(rq_app) == {}  # a visitor leaving is not a delivery problem for the admin
    assert ph.sub_row(rq_app, sub_id).status == "unsubscribed"


# --- the single-box default: no Redis, jobs on the web process's own thread ---------------------------

@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_embedded_job_thread_delivers_without_redis(kind, tmp_path, pg_database, sim):
    app = ph.build_app(kind, tmp_path, pg_database, sim, JOBS_EAGER=False)
    try:
        assert app.config["REDIS_URL"] is None
        api = ph.Api(app.test_client(), ph.create_admin_token(app))
        public_key = ph.generate_keys(app)
        sub, sub_id = ph.subscribe(api.client, sim, public_key)
        incident_id = _post_incident(api, name="Single box")
        [message] = sim.wait_for(1, timeout=30, token=sub.token)  # bounded wait for the background thread
        assert message.payload["url"] == f"https://status.example.com/incidents/{incident_id}"
        for _ in range(300):  # the outcome is written right after the answer; bounded wait for it
            [event] = ph.event_rows(app)
            if event.state == "done":
                break
            time.sleep(0.02)
        assert (event.state, event.sent_count) == ("done", 1)
        assert ph.delivery_rows(app, event.id)[sub_id].outcome == "sent"
    finally:
        ph.dispose(app)


def test_worker_that_died_mid_send_is_not_resent(rq_app, sim, rq_api):
    """Rows a dead worker left 'sending' are failed by the sweeper, never sent a second time:
    nobody knows whether the push went out, and a duplicate alert is worse than a missing one."""
    from statuspage.push.delivery import _claim_new

    public_key = ph.generate_keys(rq_app)
    sub, sub_id = ph.subscribe(rq_api.client, sim, public_key)
    _post_incident(rq_api)
    q = ph.queue(rq_app)
    with rq_app.app_context():
        AppWorker([q], connection=q.connection).work(burst=True, max_jobs=1, logging_level="WARNING")  # fan-out
        [event] = db.session.execute(select(Event)).scalars()
        assert _claim_new(event, sub_id, sub_id) == [sub_id]  # a worker claimed the row ...
    q.empty()  # ... and died with its job
    with rq_app.app_context():
        from statuspage.models import Delivery

        for row in db.session.execute(select(Delivery)).scalars():
            row.updated_at -= timedelta(minutes=10)
        [event] = db.session.execute(select(Event)).scalars()
        event.progress_at -= timedelta(minutes=10)
        db.session.commit()
    result = rq_app.test_cli_runner().invoke(args=["sweep"])
    assert "'requeued': 1" in result.output
    ph.run_worker(rq_app)
    assert sim.attempts() == []
    [event] = ph.event_rows(rq_app)
    assert (event.state, event.failed_count) == ("done", 1)
    assert ph.delivery_rows(rq_app, event.id)[sub_id].reason.startswith("interrupted")


def test_maintenance_start_is_announced_on_time_through_the_rq_scheduler(rq_app, sim, rq_api):
    from datetime import datetime

    from statuspage.models import Incident

    assert rq_api.put("/api/v1/triggers", json={"maintenance.started": {"enabled": True}}).status_code == 200
    public_key = ph.generate_keys(rq_app)
    sub, _ = ph.subscribe(rq_api.client, sim, public_key)
    start = datetime.now(UTC) + timedelta(hours=1)
    r = rq_api.post("/api/v1/maintenances", json={
        "name": "Database upgrade", "scheduled_for": start.isoformat(),
        "scheduled_until": (start + timedelta(hours=2)).isoformat(), "body": "Upgrading to v16."})
    assert r.status_code == 201, r.json
    maintenance_id = r.json["id"]
    ph.run_worker(rq_app)
    assert sim.attempts() == []  # maintenance.scheduled is off by default; the start is an hour away
    jobs = sorted(when for job, when in ph.scheduled_jobs(rq_app)
                  if job.func_name == JobName.RUN_DUE_MAINTENANCES)
    assert len(jobs) == 2 and abs(jobs[0] - start.timestamp()) < 5

    with rq_app.app_context():  # the hour passes
        row = db.session.get(Incident, maintenance_id)
        row.scheduled_for -= timedelta(hours=1, minutes=1)
        db.session.commit()
    ph.make_due(rq_app)
    ph.run_worker(rq_app)
    [message] = sim.received(sub.token)
    assert message.payload["event"] == "maintenance.started"
    assert message.payload["title"] == "Maintenance started: Database upgrade"
    assert message.payload["body"] == "Scheduled maintenance is now in progress."
    assert message.payload["tag"] == f"maintenance-{maintenance_id}"
    assert message.headers["Topic"] == f"maintenance-{maintenance_id}"


def test_unsubscribed_between_fan_out_and_batch_still_finishes_the_event(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    leaving, _ = ph.subscribe(rq_api.client, sim, public_key)
    staying, _ = ph.subscribe(rq_api.client, sim, public_key)
    _post_incident(rq_api)
    q = ph.queue(rq_app)
    with rq_app.app_context():
        AppWorker([q], connection=q.connection).work(burst=True, max_jobs=1, logging_level="WARNING")  # fan-out
    assert rq_api.client.delete("/api/push/subscriptions", json={"endpoint": leaving.endpoint}).status_code == 204
    ph.run_worker(rq_app)
    assert sim.received(leaving.token) == [] and len(sim.received(staying.token)) == 1
    [event] = ph.event_rows(rq_app)
    assert event.state == "done"
    [listed] = rq_api.get("/api/v1/events").json
    assert listed["counts"]["queued"] == 0 and listed["counts"]["sent"] == 1


def test_resumed_retry_keeps_the_attempt_budget(rq_app, sim, rq_api):
    """A retry job lost from Redis is re-queued by the sweeper with its attempts so far: a
    delivery already tried 5 times gets exactly one more try, not a fresh budget of 6."""
    public_key = ph.generate_keys(rq_app)
    sub, sub_id = ph.subscribe(rq_api.client, sim, public_key)
    sim.respond_with(sub.token, 503)  # until reset
    _post_incident(rq_api)
    ph.run_worker(rq_app)  # first attempt → retry scheduled
    ph.queue(rq_app).connection.flushdb()  # the scheduled retry job is lost
    with rq_app.app_context():
        [event] = db.session.execute(select(Event)).scalars()
        delivery = db.session.execute(select(Delivery).where(Delivery.event_id == event.id)).scalar_one()
        assert delivery.outcome == "retry" and delivery.reason.startswith("will retry: 503")
        delivery.attempts = 5
        delivery.next_attempt_at = event.created_at - timedelta(hours=1)
        event.progress_at = event.created_at - timedelta(hours=1)
        db.session.commit()
    assert rq_app.test_cli_runner().invoke(args=["sweep"]).exit_code == 0
    ph.run_worker(rq_app)
    assert len(sim.attempts(sub.token)) == 2  # the first try and the one resumed try, no more
    [event] = ph.event_rows(rq_app)
    delivery = ph.delivery_rows(rq_app, event.id)[sub_id]
    assert delivery.outcome == "failed" and delivery.reason.startswith("gave up after 6 attempts")
    assert (event.state, event.failed_count) == ("done", 1)
