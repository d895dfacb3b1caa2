"""The service worker reports a shown notification, and an opened one, by event id only
(static/js/sw-report.js), in real Chromium: the push arrives through the DevTools protocol, the
report goes to the live app, and the event's counts move. The server refuses any report with
another field (tests/push/test_seen.py), so a count that moves is also a report that carried
nothing but the event id, the kind and an age."""
from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from statuspage.extensions import db
from statuspage.models import Event
from statuspage.timeutil import utcnow

pytestmark = pytest.mark.browser


def _sent_event(live, sent: int = 5) -> int:
    with live.db():
        now = utcnow()
        event = Event(type="incident.created", context={"incident_name": "Reported"}, state="done",
                      queued_count=sent, sent_count=sent, dispatched_at=now, fanned_out_at=now)
        db.session.add(event)
        db.session.commit()
        return event.id


def _wait_for_counts(live, event_id: int, want: tuple[int, int], timeout: float = 30) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        with live.db():
            event = db.session.get(Event, event_id)
            counts = (event.shown_count, event.opened_count)
        if counts == want or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_service_worker_reports_shown_and_opened_by_event_id(live, page, context, sw_push):
    event_id = _sent_event(live)
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    tag = f"incident-{event_id}"
    payload = {"title": "Example Status: Reported", "body": "Investigating", "url": live.url + "/",
               "tag": tag, "event": "incident.created", "event_id": event_id, "timestamp": 1767225600000}
    push = sw_push(page)
    push.deliver(payload)
    [note] = push.notifications(tag=tag)
    assert note["title"] == payload["title"]
    assert _wait_for_counts(live, event_id, (1, 0)) == (1, 0)

    # The same push again (DevTools re-delivery, a push service's duplicate): reported once.
    push.deliver(payload)
    push.notifications(tag=tag)

    # A click: the notification's tag leads back to the event last shown under it.
    [worker] = [w for w in context.service_workers if w.url.endswith("/sw-push.js")]
    worker.evaluate("(tag) => StatusReport.opened({ tag, data: { url: '/' } })", tag)
    assert _wait_for_counts(live, event_id, (1, 1)) == (1, 1)
    time.sleep(1)
    assert _wait_for_counts(live, event_id, (1, 1), timeout=0) == (1, 1)


def test_a_declarative_push_is_reported_shown_by_its_event_id(live, page, sw_push):
    """Apple endpoints get Declarative Web Push (push.formats): the event id travels in
    notification.data, and the service worker that shows it reports it the same way."""
    from statuspage.push.formats import declarative_message

    event_id = _sent_event(live)
    page.goto(live.url + "/")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    tag = f"incident-{event_id}"
    message = declarative_message({"title": "Example Status: Declarative", "body": "Identified",
                                   "url": live.url + "/", "tag": tag, "event": "incident.updated",
                                   "event_id": event_id, "timestamp": 1767225600000})
    assert message["notification"]["data"]["event_id"] == event_id
    push = sw_push(page)
    push.deliver(message)
    [note] = push.notifications(tag=tag)
    assert note["title"] == "Example Status: Declarative"
    assert _wait_for_counts(live, event_id, (1, 0)) == (1, 0)


BOUNDS_JS = """
async () => {
  const realFetch = self.fetch;
  const posts = [];
  const push = (id) => ({ data: { text: () => JSON.stringify({ event_id: id, tag: 'bound-' + id }) } });
  self.fetch = () => Promise.reject(new TypeError('offline'));
  try {
    const ids = Array.from({ length: 60 }, (_, i) => 1000000 + i);
    await Promise.all([...ids, 1000059, 1000059].map((id) => StatusReport.shown(push(id))));
    const queued = (await StatusPush.store.get('reportQueue')).map((r) => r.event);
    self.fetch = (url, init) => { posts.push(JSON.parse(init.body)); return realFetch(url, init); };
    await StatusReport.shown(push(2000000));
    const left = (await StatusPush.store.get('reportQueue')).length;
    return { queued, posts, left };
  } finally {
    self.fetch = realFetch;
  }
}
"""


def test_reports_wait_offline_in_a_bounded_queue_and_go_in_one_batch(live, page, context):
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    [worker] = [w for w in context.service_workers if w.url.endswith("/sw-push.js")]
    result = worker.evaluate(BOUNDS_JS)
    # Offline: 60 events (one of them reported three times) queue up, bounded to the newest 50.
    assert result["queued"] == list(range(1000010, 1000060))
    # Back online: the next report sends everything queued in one request, and the queue empties.
    [post] = result["posts"]
    assert [r["event"] for r in post["reports"]] == [*range(1000011, 1000060), 2000000]
    assert all(set(r) == {"event", "kind", "age"} and r["kind"] == "shown" for r in post["reports"])
    assert result["left"] == 0
