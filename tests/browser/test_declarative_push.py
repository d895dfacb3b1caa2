"""Chromium shows the notification for both payload shapes (classic JSON and Declarative Web Push),
delivered to the real service worker through the DevTools protocol."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from statuspage.push.formats import encode_for

from .conftest import api_call, subscribe_in_page

pytestmark = pytest.mark.browser

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


def test_a_declarative_test_push_from_the_server_shows_in_chromium(live, page, browser_push, sw_push):
    """payload_format=declarative: the server sends the WebKit shape (the simulator decrypts and
    checks it), and the same bytes delivered to Chromium's service worker show the notification."""
    status, _ = api_call(live, "PUT", "/api/v1/push/settings", {"payload_format": "declarative"})
    assert status == 200
    try:
        sim_sub = browser_push.prepare()
        browser_push.install()
        subscribe_in_page(page, live)
        with page.expect_response(lambda r: r.url.endswith("/api/push/test")) as answer:
            page.get_by_role("button", name="Send me a test").click()
        assert answer.value.status == 202
        expect(page.locator("#subscribe-feedback")).to_contain_text("Test sent")
        [message] = live.sim.wait_for(1, token=sim_sub.token, timeout=30)
    finally:
        api_call(live, "PUT", "/api/v1/push/settings", {"payload_format": "auto"})
    assert message.declarative
    assert message.payload["notification"]["title"] == "Example Status: test notification"

    push = sw_push(page)
    push.deliver(message.plaintext.decode())
    [note] = push.notifications(tag="test")
    assert note["title"] == "Example Status: test notification"
    assert note["data"]["url"] == live.url + "/"
