"""Seen and opened counts (issue 16): POST /api/push/reports takes what service workers report,
by event id only. Counts never pass what an event sent, whatever duplicated or forged reports
say; bad input is a 400 that stores nothing; admins see shown, opened, the open rate and the
send-to-shown p50/p95 per event, in the API and on the deliveries page."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from statuspage.extensions import db
from statuspage.models import Event, EventShownLatency
from statuspage.push.seen import LATENCY_BUCKETS, MAX_AGE_MS, MAX_REPORTS, latency_bucket, percentile
from statuspage.timeutil import utcnow
from tests.push import helpers as ph

REPORTS = "/api/push/reports"


def _event(app, *, sent: int, fanned_out_seconds_ago: float = 60, state: str = "done") -> int:
    """An event that went out to `sent` subscribers (the delivery itself is test_delivery's business)."""
    with app.app_context():
        now = utcnow()
        event = Event(type="incident.created", context={"incident_name": "Database down"}, state=state,
                      queued_count=sent, sent_count=sent, dispatched_at=now,
                      fanned_out_at=now - timedelta(seconds=fanned_out_seconds_ago) if sent else None)
        db.session.add(event)
        db.session.commit()
        return event.id


def _counts(app, event_id: int) -> tuple[int, int]:
    with app.app_context():
        event = db.session.get(Event, event_id)
        return event.shown_count, event.opened_count


def _report(client, *items: tuple[int, str, int]):
    return client.post(REPORTS, json={"reports": [{"event": e, "kind": k, "age": a} for e, k, a in items]})


def _latency_rows(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(EventShownLatency)).scalar_one()


def test_a_delivered_notification_names_its_event_and_its_reports_count(eager_app, sim, eager_api):
    key = ph.generate_keys(eager_app)
    subs = [ph.subscribe(eager_api.client, sim, key)[0] for _ in range(3)]
    r = eager_api.post("/api/v1/incidents", json={"name": "API errors", "status": "investigating", "impact": "minor"})
    assert r.status_code == 201, r.json
    [message] = sim.received(subs[0].token)
    event_id = message.payload["event_id"]

    r = _report(eager_api.client, (event_id, "shown", 1500), (event_id, "shown", 200), (event_id, "opened", 0))
    assert (r.status_code, r.data) == (202, b"")  # bare: how many counted is not said
    assert _counts(eager_app, event_id) == (2, 1)
    [listed] = [e for e in eager_api.get("/api/v1/events").json if e["id"] == event_id]
    assert listed["counts"] == {"queued": 0, "sent": 3, "expired": 0, "failed": 0, "targeted": 3,
                                     "shown": 2, "opened": 1}
    assert listed["open_rate"] == round(1 / 3, 4)
    assert listed["shown_latency"]["p50_seconds"] in LATENCY_BUCKETS
    assert listed["shown_latency"]["p95_seconds"] >= listed["shown_latency"]["p50_seconds"]


def test_duplicate_reports_never_count_past_what_was_sent(app, client):
    event_id = _event(app, sent=2)
    assert _report(client, (event_id, "shown", 10), (event_id, "shown", 10)).status_code == 202
    assert _counts(app, event_id) == (2, 0)
    # The same reports again (a retried POST, a replay): the counts are already at "sent".
    for _ in range(3):
        r = _report(client, (event_id, "shown", 10), (event_id, "opened", 5), (event_id, "opened", 5),
                    (event_id, "opened", 5))
        assert r.status_code == 202
    assert _counts(app, event_id) == (2, 2)
    with app.app_context():
        histogram = db.session.execute(select(func.sum(EventShownLatency.count))
                                       .where(EventShownLatency.event_id == event_id)).scalar_one()
    assert histogram == 2  # the latency histogram holds only the reports that counted


def test_forged_reports_cannot_inflate_another_event(app, client):
    small = _event(app, sent=3)
    big = _event(app, sent=1000)
    silent = _event(app, sent=0, state="skipped")  # never sent: takes no reports at all
    forged = [(small, "shown", 0)] * 40 + [(silent, "opened", 0)] * 5 + [(2**31 - 1, "shown", 0)] * 5
    r = _report(client, *forged)
    # The answer is the same bare 202 whatever counted: it does not reveal how many were sent.
    assert (r.status_code, r.data) == (202, b"")
    assert _counts(app, small) == (3, 0)
    r = _report(client, *[(small, "opened", 0)] * MAX_REPORTS)
    assert (r.status_code, r.data) == (202, b"")
    assert _counts(app, small) == (3, 3)
    assert _counts(app, silent) == (0, 0)
    assert _counts(app, big) == (0, 0)  # a neighbour's counts are untouched


def test_reports_during_delivery_count_up_to_the_targets_and_are_clamped_to_sent_at_the_end(app, client):
    """A phone can show a notification before its batch has recorded "sent": while the event is
    still sending, reports count up to what it targets; when it finishes, never above sent."""
    from statuspage.push.delivery import _mark_progress

    with app.app_context():
        now = utcnow()
        event = Event(type="incident.created", context={}, state="sending", queued_count=10, sent_count=0,
                      dispatched_at=now, fanned_out_at=now)
        db.session.add(event)
        db.session.commit()
        event_id = event.id
    r = _report(client, *[(event_id, "shown", 0)] * 12, *[(event_id, "opened", 0)] * 4)
    assert (r.status_code, r.data) == (202, b"")
    assert _counts(app, event_id) == (10, 4)
    with app.app_context():  # the batches finish: 3 sent, 7 failed
        event = db.session.get(Event, event_id)
        event.sent_count, event.failed_count = 3, 7
        db.session.commit()
        assert _mark_progress(event_id)
    assert _counts(app, event_id) == (3, 3)
    assert _report(client, (event_id, "opened", 0)).status_code == 202
    assert _counts(app, event_id) == (3, 3)


def _histogram(app, event_id: int) -> dict[int, int]:
    with app.app_context():
        return dict(db.session.execute(select(EventShownLatency.bucket, EventShownLatency.count)
                                       .where(EventShownLatency.event_id == event_id)).tuples().all())


def test_clamping_to_sent_at_the_end_trims_the_latency_histogram_alike(app, client):
    """The histogram never holds more entries than the (clamped) shown count, and trimming it keeps
    its shape: every bucket is scaled down alike."""
    from statuspage.push.delivery import _mark_progress

    with app.app_context():
        now = utcnow()
        event = Event(type="incident.created", context={}, state="sending", queued_count=10, sent_count=0,
                      dispatched_at=now, fanned_out_at=now - timedelta(seconds=1000))
        db.session.add(event)
        db.session.commit()
        event_id = event.id
    # 8 shown at once (latency 0 s), 2 after 500 s; then 2 more beyond the target: not counted.
    _report(client, *[(event_id, "shown", 1_000_000)] * 8, *[(event_id, "shown", 500_000)] * 4)
    fast, slow = latency_bucket(0), latency_bucket(500)
    assert _counts(app, event_id) == (10, 0) and _histogram(app, event_id) == {fast: 8, slow: 2}
    with app.app_context():  # only 5 were sent after all
        event = db.session.get(Event, event_id)
        event.sent_count, event.failed_count = 5, 5
        db.session.commit()
        assert _mark_progress(event_id)
    assert _counts(app, event_id) == (5, 0)
    assert _histogram(app, event_id) == {fast: 4, slow: 1}


def test_reports_older_than_the_fan_out_are_ignored_not_counted_as_instant(app, client):
    event_id = _event(app, sent=10, fanned_out_seconds_ago=60)
    # "Shown 2 minutes ago" for an event fanned out 1 minute ago: not about this event.
    _report(client, (event_id, "shown", 120_000), (event_id, "opened", 120_000))
    assert _counts(app, event_id) == (0, 0) and _latency_rows(app) == 0
    # A few seconds early is clock skew between hosts: counted, as latency 0.
    _report(client, (event_id, "shown", 62_000), (event_id, "opened", 62_000))
    assert _counts(app, event_id) == (1, 1)
    assert _histogram(app, event_id) == {0: 1}


def test_reports_for_events_fanned_out_more_than_8_days_ago_are_ignored(app, client):
    old = _event(app, sent=10, fanned_out_seconds_ago=8 * 86400 + 60)
    recent = _event(app, sent=10, fanned_out_seconds_ago=8 * 86400 - 60)
    r = _report(client, (old, "shown", 0), (old, "opened", 0), (recent, "shown", 0), (recent, "opened", 0))
    assert (r.status_code, r.data) == (202, b"")
    assert _counts(app, old) == (0, 0)
    assert _counts(app, recent) == (1, 1)


@pytest.mark.parametrize("body,message", [
    ({}, "reports must be a non-empty list"),
    ({"reports": []}, "reports must be a non-empty list"),
    ({"reports": "shown"}, "reports must be a non-empty list"),
    ({"reports": [{"event": 1, "kind": "shown", "age": 0}] * (MAX_REPORTS + 1)}, f"at most {MAX_REPORTS} items"),
    ({"reports": [{"event": 1, "kind": "shown", "age": 0}], "endpoint": "x"}, "unknown field(s) in body"),
    ({"reports": [{"event": 1, "kind": "shown", "age": 0, "subscription": 7}]}, "unknown field(s) in report"),
    ({"reports": [{"event": 1, "kind": "clicked", "age": 0}]}, "kind must be one of: shown, opened"),
    ({"reports": [{"event": "1", "kind": "shown", "age": 0}]}, "event must be an integer"),
    ({"reports": [{"event": 0, "kind": "shown", "age": 0}]}, "event must be at least 1"),
    ({"reports": [{"event": 2**31, "kind": "shown", "age": 0}]}, "event must be at most"),
    ({"reports": [{"event": True, "kind": "shown", "age": 0}]}, "event must be an integer"),
    ({"reports": [{"kind": "shown", "age": 0}]}, "each report needs an event id"),
    ({"reports": [{"event": 1, "kind": "shown"}]}, "age is required"),
    ({"reports": [{"event": 1, "kind": "shown", "age": -1}]}, "age must be at least 0"),
    ({"reports": [{"event": 1, "kind": "shown", "age": 1.5}]}, "age must be an integer"),
    ({"reports": [{"event": 1, "kind": "shown", "age": MAX_AGE_MS + 1}]}, "age must be at most"),
    ({"reports": [7]}, "report must be a JSON object"),
    ([{"event": 1, "kind": "shown", "age": 0}], "body must be a JSON object"),
])
def test_bad_reports_get_a_400_and_store_nothing(app, client, body, message):
    event_id = _event(app, sent=5)
    # A valid report first: the request is refused whole, so even that one is not counted.
    if isinstance(body, dict) and isinstance(body.get("reports"), list) and 0 < len(body["reports"]) <= MAX_REPORTS:
        body = {**body, "reports": [{"event": event_id, "kind": "shown", "age": 0}, *body["reports"]]}
    r = client.post(REPORTS, json=body)
    assert r.status_code == 400, r.json
    assert message in r.json["error"]
    assert _counts(app, event_id) == (0, 0) and _latency_rows(app) == 0


@pytest.mark.parametrize("raw,content_type", [
    (b"not json", "application/json"), (b'{"reports": [', "application/json"), (b"", "application/json"),
    (b"\xff\xfe{}", "application/json"),
])
def test_malformed_report_bodies_get_a_4xx_and_store_nothing(app, client, raw, content_type):
    event_id = _event(app, sent=5)
    r = client.post(REPORTS, data=raw, content_type=content_type)
    assert 400 <= r.status_code < 500 and r.json["error"]
    assert _counts(app, event_id) == (0, 0)


def test_an_oversized_report_body_is_refused(app, client):
    event_id = _event(app, sent=5)
    body = {"reports": [{"event": event_id, "kind": "shown", "age": 0}], "pad": "x" * app.config["MAX_CONTENT_LENGTH"]}
    r = client.post(REPORTS, json=body)
    assert r.status_code == 413
    assert _counts(app, event_id) == (0, 0)


@pytest.mark.app_config(RATELIMIT_ENABLED=True, RATELIMIT_PUSH_REPORTS="3 per minute")
def test_reports_are_rate_limited(app, client):
    event_id = _event(app, sent=100)
    for _ in range(3):
        assert _report(client, (event_id, "shown", 0)).status_code == 202
    r = _report(client, (event_id, "shown", 0))
    assert r.status_code == 429
    assert _counts(app, event_id) == (3, 0)


def test_send_to_shown_percentiles_come_from_the_histogram(app, client):
    # Fanned out 1000 s ago: a report "shown 996 s ago" took about 4 s, "shown 500 s ago" 500 s.
    event_id = _event(app, sent=20, fanned_out_seconds_ago=1000)
    r = _report(client, *[(event_id, "shown", 996_000)] * 18, *[(event_id, "shown", 500_000)] * 2)
    assert r.status_code == 202 and _counts(app, event_id) == (20, 0)
    api = ph.Api(client, ph.create_admin_token(app))
    [listed] = [e for e in api.get("/api/v1/events").json if e["id"] == event_id]
    assert listed["shown_latency"] == {"p50_seconds": 5, "p95_seconds": 600}
    assert listed["open_rate"] == 0.0


def test_histogram_helpers():
    assert [latency_bucket(s) for s in (0, 1, 1.01, 4, 5, 599, 10**9)] == [0, 0, 1, 3, 3, 10, len(LATENCY_BUCKETS) - 1]
    assert percentile({}, 0.5) is None
    assert percentile({3: 1}, 0.5) == 5 and percentile({3: 1}, 0.95) == 5
    assert percentile({0: 50, 10: 50}, 0.5) == 1 and percentile({0: 50, 10: 50}, 0.51) == 600


def test_admins_see_shown_opened_open_rate_and_latency_on_the_deliveries_page(app, client):
    event_id = _event(app, sent=4, fanned_out_seconds_ago=1000)
    _report(client, (event_id, "shown", 996_000), (event_id, "shown", 996_000), (event_id, "opened", 0))
    ph.create_admin_token(app)
    r = client.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert r.status_code == 302
    page = client.get("/admin/events").get_data(as_text=True)
    row = page[page.index(f'data-event-id="{event_id}"'):]
    row = row[:row.index("</tr>")]
    assert '<td class="count-shown">2</td>' in row
    assert '<td class="count-opened">1</td>' in row
    assert '<td class="open-rate">25%</td>' in row
    assert "≤ 5 s / ≤ 5 s" in row
