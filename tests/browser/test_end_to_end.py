"""A visitor subscribes in Chromium, an admin posts an incident, and the notification appears.

The app encrypts and sends the push through the simulator (a real push service over HTTP that
checks VAPID and decrypts with the keys the browser's subscription carries); the decrypted
message is then delivered to the page's service worker through the DevTools protocol, as the
browser's push service connection would, and the notification it shows is read back.
"""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import admin_login, api_call, shot, subscribe_in_page, wait_for_events_done

pytestmark = pytest.mark.browser


def _unsubscribe_everyone_else(live) -> None:
    """The live server is shared by the session: earlier tests' subscribers would also be sent to
    and change the delivery counts this test reads."""
    from statuspage.extensions import db
    from statuspage.models import Subscription, SubscriptionStatus

    with live.db():
        db.session.query(Subscription).filter_by(status=SubscriptionStatus.ACTIVE).update(
            {"status": SubscriptionStatus.UNSUBSCRIBED})
        db.session.commit()


def test_incident_posted_by_admin_appears_as_a_notification(live, page, browser_push, sw_push):
    _unsubscribe_everyone_else(live)
    sim_sub = browser_push.prepare()
    browser_push.install()
    subscribe_in_page(page, live, component="API")

    status, incident = api_call(live, "POST", "/api/v1/incidents", {
        "name": "Checkout errors", "status": "investigating", "impact": "major",
        "body": "We are **investigating** failed payments.",
        "components": {str(live.components["API"]): "partial_outage"},
    })
    assert status == 201, incident

    [message] = live.sim.wait_for(1, token=sim_sub.token, timeout=30)
    payload = message.payload
    assert payload["event"] == "incident.created"
    assert payload["title"] == "Example Status: Checkout errors"
    assert payload["body"] == "Investigating — We are investigating failed payments."
    assert payload["tag"] == f"incident-{incident['id']}"
    assert message.headers["Content-Encoding"] == "aes128gcm"

    push = sw_push(page)
    push.deliver(message.plaintext.decode())
    [note] = push.notifications(tag=payload["tag"])
    assert note["title"] == "Example Status: Checkout errors"
    assert note["body"] == "Investigating — We are investigating failed payments."
    assert note["icon"] == payload["icon"] == live.url + "/static/icons/icon-192.png"
    assert note["badge"] == payload["badge"] == live.url + "/static/icons/badge-96.png"
    assert note["data"]["url"] == payload["url"]
    assert payload["url"].startswith(live.url + "/incidents/")

    # The update replaces the notification on the device (same tag).
    status, _ = api_call(live, "POST", f"/api/v1/incidents/{incident['id']}/updates",
                             {"status": "resolved", "body": "Payments work again."})
    assert status == 201
    messages = live.sim.wait_for(2, token=sim_sub.token, timeout=30)
    resolved = messages[-1].payload
    assert resolved["event"] == "incident.resolved"
    assert resolved["tag"] == payload["tag"]
    push.deliver(messages[-1].plaintext.decode())
    [replaced] = push.notifications(tag=payload["tag"], title="Resolved: Checkout errors")
    assert replaced["body"] == "Payments work again."
    assert len(push.notifications(tag=payload["tag"])) == 1

    # The admin sees what was delivered for each event.
    wait_for_events_done(live, incident["id"], 2)
    admin = page.context.new_page()
    admin_login(admin, live)
    admin.goto(live.url + "/admin/events")
    for event_type in ("incident.created", "incident.resolved"):
        row = admin.locator("tbody tr").filter(has_text=event_type).filter(has_text="Checkout errors")
        expect(row.locator("td.count-sent")).to_have_text("1")
        expect(row.locator("td.count-failed")).to_have_text("0")
        expect(row).to_contain_text("done")
    shot(admin, "admin-deliveries", full_page=True)

