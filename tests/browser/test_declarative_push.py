"""Chromium shows the notification for both payload shapes (classic JSON and Declarative Web Push),
delivered to the real service worker through the DevTools protocol; a visit re-sends the page's
subscription (at most daily), keeping last_seen_at true."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from statuspage.extensions import db
from statuspage.push.formats import encode_for
from statuspage.push.subscriptions import find_subscription

from .conftest import api_call, send_test_from_page, subscribe_in_page

pytestmark = pytest.mark.browser


@pytest.fixture
def leave_no_subscriber(live, browser_push):
    """The live server is shared by the session: the subscriptions made here are unsubscribed after
    the test, so later tests count only their own deliveries."""
    yield
    for sim_sub in browser_push.prepared:
        code = live.app.test_client().delete("/api/push/subscriptions", json={"endpoint": sim_sub["endpoint"]})
        assert code.status_code in (204, 404)

NOTE_DETAILS_JS = """
async (tag) => {
  const reg = await navigator.serviceWorker.ready;
  return (await reg.getNotifications({ tag })).map((n) => ({ lang: n.lang, dir: n.dir, silent: n.silent,
                                                               timestamp: n.timestamp }));
}
"""


def _classic(live, n: int) -> dict:
    return {"title": f"Example Status: outage {n}", "body": f"Investigating — number {n}",
            "icon": live.url + "/static/icons/icon-192.png", "badge": live.url + "/static/icons/badge-96.png",
            "url": live.url + f"/incidents/{n}", "tag": f"incident-{n}", "event": "incident.created",
            "timestamp": 1767225600000}


def test_both_payload_shapes_show_the_same_notification(live, page, sw_push):
    page.goto(live.url + "/")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    push = sw_push(page)
    for n, declarative in ((7, False), (8, True)):
        payload = _classic(live, n)
        data = encode_for(payload, declarative).decode()
        assert ('"web_push":8030' in data) is declarative
        push.deliver(data)
        [note] = push.notifications(tag=f"incident-{n}")
        assert note["title"] == payload["title"]
        assert note["body"] == payload["body"]
        assert note["icon"] == payload["icon"] and note["badge"] == payload["badge"]
        assert note["data"]["url"] == payload["url"]  # navigate, for the declarative one
        assert note["data"]["event"] == "incident.created"
    [details] = page.evaluate(NOTE_DETAILS_JS, "incident-8")
    assert (details["lang"], details["dir"], details["silent"]) == ("en", "ltr", False)
    assert details["timestamp"] == 1767225600000


def test_a_declarative_push_with_a_foreign_link_opens_the_site_instead(live, page, sw_push):
    page.goto(live.url + "/")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    push = sw_push(page)
    push.deliver(json.dumps({"web_push": 8030, "mutable": True, "notification": {
        "title": "Odd", "navigate": "https://elsewhere.example/phish", "tag": "odd", "silent": True}}))
    [note] = push.notifications(tag="odd")
    assert note["title"] == "Odd" and note["data"]["url"] == live.url + "/"
    [details] = page.evaluate(NOTE_DETAILS_JS, "odd")
    assert details["silent"] is True  # silent drops renotify, which Chromium refuses beside it


def test_a_declarative_test_push_from_the_server_shows_in_chromium(live, page, browser_push, sw_push,
                                                                    leave_no_subscriber):
    """payload_format=declarative: the server sends the WebKit shape (the simulator decrypts and
    checks it), and the same bytes delivered to Chromium's service worker show the notification."""
    status, _ = api_call(live, "PUT", "/api/v1/push/settings", {"payload_format": "declarative"})
    assert status == 200
    try:
        sim_sub = browser_push.prepare()
        browser_push.install()
        message = send_test_from_page(page, live, sim_sub)
    finally:
        api_call(live, "PUT", "/api/v1/push/settings", {"payload_format": "auto"})
    assert message.declarative
    assert message.payload["notification"]["title"] == "Example Status: test notification"

    push = sw_push(page)
    push.deliver(message.plaintext.decode())
    [note] = push.notifications(tag="test")
    assert note["title"] == "Example Status: test notification"
    assert note["data"]["url"] == live.url + "/"


def _last_seen(live, endpoint: str):
    with live.db():
        return find_subscription(endpoint).last_seen_at


def test_a_visit_re_sends_the_subscription_at_most_daily_keeping_last_seen(live, page, browser_push,
                                                                          leave_no_subscriber):
    """The page re-sends its current subscription on a visit (rate-limited to once a day per
    browser), so the server knows the browser still holds it (PUSH_STALE_DAYS)."""
    sim_sub = browser_push.prepare()
    browser_push.install()
    subscribe_in_page(page, live)
    with live.db():
        row = find_subscription(sim_sub.endpoint)
        row.last_seen_at -= timedelta(days=30)
        db.session.commit()
    old = _last_seen(live, sim_sub.endpoint)

    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and r.url.endswith(
        "/api/push/subscriptions") else None)
    page.reload()  # visited again within the day: nothing sent
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "subscribed")
    page.wait_for_timeout(300)
    assert posts == [] and _last_seen(live, sim_sub.endpoint) == old

    page.evaluate("globalThis.StatusPush.store.set('lastSync', Date.now() - 25 * 3600 * 1000)")
    with page.expect_response(lambda r: r.url.endswith("/api/push/subscriptions")
                              and r.request.method == "POST") as posted:
        page.reload()  # a day later
    assert posted.value.status == 200
    assert _last_seen(live, sim_sub.endpoint) > old + timedelta(days=29)
