"""Offline: the service worker keeps the last status and incident pages it saw, so a notification
tapped while the device is offline still opens something useful, marked as possibly stale.

Chromium with the browser context switched offline (Playwright's ``set_offline``: the service
worker's own fetches fail too). A push delivered through DevTools makes the worker save the
incident page it points at, so even a page the visitor never opened is there offline.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import api_call

pytestmark = pytest.mark.browser

SAVED_JS = """
async (path) => {
  const cache = await caches.open('status-pages-v1');
  return !!(await cache.match(path));
}
"""


def wait_until(page, script: str, arg=None, timeout_ms: int = 15000) -> None:
    # Polled from here: wait_for_function would evaluate a string in the page, which its CSP forbids.
    for _ in range(timeout_ms // 50):
        if page.evaluate(script, arg):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out: {script} ({arg})")


def wait_saved(page, path: str) -> None:
    wait_until(page, SAVED_JS, path)


def test_offline_visitor_sees_saved_pages_marked_possibly_stale(live, context, page, sw_push):
    status, seen = api_call(live, "POST", "/api/v1/incidents",
                            {"name": "Payments delayed", "body": "Card payments are **delayed**.", "notify": False})
    assert status == 201, seen
    status, unseen = api_call(live, "POST", "/api/v1/incidents",
                              {"name": "Login errors", "body": "Some sign-ins fail.", "notify": False})
    assert status == 201, unseen
    seen_path, unseen_path = f"/incidents/{seen['id']}", f"/incidents/{unseen['id']}"

    page.goto(live.url + seen_path)
    wait_until(page, "() => navigator.serviceWorker.controller !== null")
    wait_saved(page, seen_path)
    wait_saved(page, "/")
    assert not page.evaluate(SAVED_JS, unseen_path)

    context.set_offline(True)
    try:
        page.goto(live.url + seen_path)
        expect(page.locator("h1")).to_have_text("Payments delayed")
        notice = page.locator(".offline-notice")
        expect(notice).to_contain_text("You are offline")
        expect(notice).to_contain_text("may be out of date")
        # A page never saved: the saved status page, saying so.
        page.goto(live.url + unseen_path)
        expect(page.locator(".offline-notice")).to_contain_text("is not saved on this device")
        expect(page.locator(".overall h1")).to_be_visible()
    finally:
        context.set_offline(False)

    # A push about the other incident arrives while online: the worker saves its page.
    page.goto(live.url + "/")
    pusher = sw_push(page)
    pusher.deliver({"title": "Login errors", "body": "Some sign-ins fail.", "url": live.url + unseen_path,
                    "tag": f"incident-{unseen['id']}", "event": "incident.created"})
    assert pusher.notifications(tag=f"incident-{unseen['id']}")
    wait_saved(page, unseen_path)

    context.set_offline(True)
    try:
        # What a tap on that notification opens, offline.
        page.goto(live.url + unseen_path)
        expect(page.locator("h1")).to_have_text("Login errors")
        expect(page.locator(".offline-notice")).to_contain_text("may be out of date")
    finally:
        context.set_offline(False)
    page.goto(live.url + seen_path)
    expect(page.locator(".offline-notice")).to_have_count(0)  # online again: the live page
