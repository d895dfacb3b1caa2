"""The subscribe control in Chromium: every state a visitor can meet, and what each button does."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from .conftest import (
    IPHONE_UA,
    BrowserPush,
    open_subscribe,
    send_test_from_page,
    shot,
    subscribe_in_page,
    subscription_row,
)

pytestmark = pytest.mark.browser


def test_subscribe_posts_the_subscription_with_the_chosen_component(live, page, browser_push):
    sim_sub = browser_push.prepare()
    browser_push.install()
    page.goto(live.url + "/")
    root = page.locator("#push-subscribe")
    expect(root).to_have_attribute("data-state", "unsubscribed")
    expect(root).to_be_hidden()  # the status comes first; the panel opens from the header
    open_subscribe(page)
    expect(page.get_by_role("button", name="Get notified")).to_be_visible()
    expect(page.locator("#subscribe-components")).to_be_hidden()  # folded
    expect(page.get_by_role("link", name="Atom feed").first).to_be_visible()
    shot(page, "subscribe-not-subscribed", selector="#push-subscribe")
    open_subscribe(page, choices=True)
    expect(page.locator("#subscribe-components")).to_be_visible()

    page.get_by_role("checkbox", name="API", exact=True).check()
    with page.expect_request(lambda r: r.url.endswith("/api/push/subscriptions") and r.method == "POST") as req:
        page.get_by_role("button", name="Get notified").click()
    posted = json.loads(req.value.post_data)
    assert posted["endpoint"] == sim_sub.endpoint
    assert posted["keys"] == {"p256dh": sim_sub.p256dh, "auth": sim_sub.auth}
    assert posted["components"] == [live.components["API"]]

    expect(root).to_have_attribute("data-state", "subscribed")
    expect(page.locator("#subscribe-open")).to_have_text("Subscribed")  # the header says so too
    expect(page.locator("#subscribe-status")).to_contain_text("You are subscribed to notifications about API")
    expect(page.get_by_role("button", name="Send me a test")).to_be_visible()
    expect(page.get_by_role("button", name="Unsubscribe")).to_be_visible()
    expect(page.get_by_role("button", name="Get notified")).to_be_hidden()
    shot(page, "subscribe-subscribed", selector="#push-subscribe")

    row = subscription_row(live, sim_sub.endpoint)
    assert row is not None
    assert row["status"] == "active"
    assert row["all_components"] is False
    assert row["components"] == [live.components["API"]]
    assert row["browser"] == "Chrome"

    # A reload shows the same state (read back from the browser's subscription and IndexedDB).
    page.reload()
    expect(root).to_have_attribute("data-state", "subscribed")
    expect(page.locator("#subscribe-status")).to_contain_text("about API")


def test_push_through_devtools_shows_the_notification(live, page, sw_push):
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    payload = {
        "title": "Example Status: Elevated API errors", "body": "Investigating — we are on it",
        "icon": live.url + "/static/icons/icon-192.png", "badge": live.url + "/static/icons/badge-96.png",
        "url": live.url + "/incidents/42", "tag": "incident-42", "event": "incident.created",
        "timestamp": 1767225600000,
    }
    push = sw_push(page)
    push.deliver(payload)
    [note] = push.notifications(tag="incident-42")
    assert note["title"] == payload["title"]
    assert note["body"] == payload["body"]
    assert note["icon"] == payload["icon"]
    assert note["badge"] == payload["badge"]
    assert note["tag"] == "incident-42"
    assert note["data"]["url"] == live.url + "/incidents/42"

    # A payload that is not JSON still shows a notification, with the defaults.
    push.deliver("plain text, not JSON")
    fallback = [n for n in push.notifications(count=2) if n["tag"] == ""]
    assert fallback and fallback[0]["title"] == "Status update"
    assert fallback[0]["body"] == "plain text, not JSON"
    assert fallback[0]["icon"] == live.url + "/static/icons/icon-192.png"


def test_send_me_a_test_reaches_the_push_service(live, page, browser_push, sw_push):
    sim_sub = browser_push.prepare()
    browser_push.install()
    message = send_test_from_page(page, live, sim_sub)
    assert message.payload["tag"] == "test"
    assert message.payload["title"] == "Example Status: test notification"
    # The simulator checked VAPID for the key the page subscribed with.
    assert message.headers["Authorization"].startswith("vapid t=")

    push = sw_push(page)
    push.deliver(message.plaintext.decode())
    [note] = push.notifications(tag="test")
    assert note["title"] == "Example Status: test notification"


def test_unsubscribe_removes_it_on_the_server(live, page, browser_push):
    sim_sub = browser_push.prepare()
    browser_push.install()
    subscribe_in_page(page, live)
    assert subscription_row(live, sim_sub.endpoint)["status"] == "active"

    with page.expect_response(lambda r: r.url.endswith("/api/push/subscriptions")
                              and r.request.method == "DELETE") as answer:
        page.get_by_role("button", name="Unsubscribe").click()
    assert answer.value.status == 204
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    expect(page.get_by_role("button", name="Get notified")).to_be_visible()
    expect(page.locator("#subscribe-feedback")).to_have_text("Unsubscribed.")
    assert subscription_row(live, sim_sub.endpoint)["status"] == "unsubscribed"
    assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.pushManager.getSubscription())") is None

    page.reload()
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")


def test_change_components_after_subscribing(live, page, browser_push):
    sim_sub = browser_push.prepare()
    browser_push.install()
    subscribe_in_page(page, live)
    assert subscription_row(live, sim_sub.endpoint)["all_components"] is True
    expect(page.locator("#subscribe-status")).to_contain_text("about all components")

    change = page.locator("#subscribe-change")
    expect(change).to_have_text("Change choices")
    change.click()
    expect(change).to_have_attribute("aria-expanded", "true")
    expect(change).to_have_text("Cancel")
    page.get_by_role("checkbox", name="Website", exact=True).check()
    page.get_by_role("checkbox", name="Email delivery", exact=True).check()
    page.get_by_role("button", name="Save choices").click()
    expect(page.locator("#subscribe-feedback")).to_have_text("Your choices were saved.")
    expect(page.locator("#subscribe-status")).to_contain_text("about Website, Email delivery")
    expect(change).to_have_attribute("aria-expanded", "false")
    expect(change).to_have_text("Change choices")
    row = subscription_row(live, sim_sub.endpoint)
    assert row["all_components"] is False
    assert row["components"] == sorted([live.components["Website"], live.components["Email delivery"]])
    assert row["id"] is not None and row["status"] == "active"


def _choices(live, endpoint: str) -> tuple[bool, bool]:
    from statuspage.push.subscriptions import find_subscription

    with live.db():
        sub = find_subscription(endpoint)
        return sub.notify_maintenance, sub.notify_resolved


def test_visitor_chooses_incidents_only_and_no_resolved_notices(live, page, browser_push):
    sim_sub = browser_push.prepare()
    browser_push.install()
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    open_subscribe(page, choices=True)
    # Defaults first: everything is on until the visitor says otherwise.
    expect(page.get_by_role("radio", name="Incidents and maintenance")).to_be_checked()
    expect(page.get_by_role("checkbox", name="Also when an incident is resolved")).to_be_checked()

    page.get_by_role("radio", name="Incidents only").check()
    page.get_by_role("checkbox", name="Also when an incident is resolved").uncheck()
    with page.expect_request(lambda r: r.url.endswith("/api/push/subscriptions") and r.method == "POST") as req:
        page.get_by_role("button", name="Get notified").click()
    posted = json.loads(req.value.post_data)
    assert (posted["maintenance"], posted["resolved"]) == (False, False)
    status = page.locator("#subscribe-status")
    expect(status).to_contain_text("about all components (incidents only, not when resolved)")
    assert _choices(live, sim_sub.endpoint) == (False, False)

    # A reload shows the stored choices; changing one keeps the other.
    page.reload()
    expect(status).to_contain_text("(incidents only, not when resolved)")
    open_subscribe(page)
    page.get_by_role("button", name="Change choices").click()
    expect(page.get_by_role("radio", name="Incidents only")).to_be_checked()
    page.get_by_role("checkbox", name="Also when an incident is resolved").check()
    page.get_by_role("button", name="Save choices").click()
    expect(page.locator("#subscribe-feedback")).to_have_text("Your choices were saved.")
    expect(status).to_contain_text("about all components (incidents only).")
    assert _choices(live, sim_sub.endpoint) == (False, True)


def test_refused_subscription_is_reported_and_not_kept(live, page, browser_push):
    browser_push.prepare_foreign("https://push.attacker.example/steal")
    browser_push.install()
    page.goto(live.url + "/")
    open_subscribe(page)
    with page.expect_response(lambda r: r.url.endswith("/api/push/subscriptions")) as answer:
        page.get_by_role("button", name="Get notified").click()
    assert answer.value.status == 400
    error = answer.value.json()["error"]
    expect(page.locator("#subscribe-feedback")).to_have_text(f"Could not subscribe: {error}")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    # The browser subscription nobody would send to was dropped again.
    assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.pushManager.getSubscription())") is None


def test_iphone_safari_tab_sees_add_to_home_screen_guidance(live, browser):
    context = browser.new_context(user_agent=IPHONE_UA, is_mobile=True, has_touch=True,
                                  viewport={"width": 390, "height": 844}, device_scale_factor=2)
    try:
        page = context.new_page()
        page.goto(live.url + "/")
        root = page.locator("#push-subscribe")
        expect(root).to_have_attribute("data-state", "ios-install")
        open_subscribe(page)
        help_box = page.locator("#subscribe-help-ios")
        expect(help_box).to_be_visible()
        expect(help_box).to_contain_text("Add to Home Screen")
        expect(page.locator("#subscribe-status")).to_contain_text("add this site to your Home Screen")
        expect(page.get_by_role("button", name="Get notified")).to_be_hidden()
        root.scroll_into_view_if_needed()
        shot(page, "subscribe-ios-install", selector="#push-subscribe")
    finally:
        context.close()


def test_ios_home_screen_app_subscribes_normally(live, browser):
    """iOS/iPadOS 16.4+: the same site opened from the Home Screen can subscribe."""
    context = browser.new_context(user_agent=IPHONE_UA, is_mobile=True, has_touch=True,
                                  viewport={"width": 390, "height": 844})
    try:
        context.grant_permissions(["notifications"], origin=live.url)
        # What Safari exposes in a Home Screen web app (Chromium cannot emulate display-mode).
        context.add_init_script("Object.defineProperty(Navigator.prototype, 'standalone', { get: () => true });")
        push = BrowserPush(live)
        sim_sub = push.prepare()
        context.add_init_script(push.script())
        page = context.new_page()
        page.goto(live.url + "/")
        expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
        expect(page.locator("#subscribe-help-ios")).to_be_hidden()
        page.locator("#subscribe-open").tap()
        page.get_by_role("button", name="Get notified").tap()
        expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "subscribed")
        row = subscription_row(live, sim_sub.endpoint)
        assert row["status"] == "active" and row["all_components"] is True
        assert row["browser"] == "Safari (iOS)"
    finally:
        context.close()


def test_browser_without_push_is_told_so(live, browser):
    context = browser.new_context()
    try:
        context.add_init_script("delete window.PushManager;")  # e.g. an old browser
        page = context.new_page()
        page.goto(live.url + "/")
        expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsupported")
        expect(page.locator("#subscribe-status")).to_have_text("This browser cannot receive push notifications.")
        open_subscribe(page)
        expect(page.locator("#subscribe-help-unsupported")).to_be_visible()
        expect(page.get_by_role("button", name="Get notified")).to_be_hidden()
    finally:
        context.close()


def test_permission_denied_explains_how_to_reset(live, browser):
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    try:
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        context_id = cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
        cdp.send("Browser.setPermission", {"permission": {"name": "notifications"}, "setting": "denied",
                                           "origin": live.url, "browserContextId": context_id})
        page.goto(live.url + "/")
        assert page.evaluate("Notification.permission") == "denied"
        expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "denied")
        expect(page.locator("#subscribe-status")).to_contain_text("blocked")
        open_subscribe(page)
        help_box = page.locator("#subscribe-help-denied")
        expect(help_box).to_be_visible()
        expect(help_box).to_contain_text("Allow")
        # Only this platform's steps (a Linux desktop Chromium): not Android's or iOS's.
        expect(help_box.locator("[data-platform=desktop]")).to_be_visible()
        expect(help_box.locator("[data-platform=desktop]")).to_contain_text("address bar")
        expect(help_box.locator("[data-platform=android]")).to_be_hidden()
        expect(help_box.locator("[data-platform=ios]")).to_be_hidden()
        expect(page.get_by_role("link", name="Atom feed").last).to_be_visible()
        expect(page.get_by_role("button", name="Get notified")).to_be_hidden()
        shot(page, "subscribe-denied", selector="#push-subscribe")
    finally:
        context.close()


def test_changed_server_key_resubscribes_silently(live, page, context, browser_push):
    from statuspage.push.keys import generate_keys

    old = browser_push.prepare()
    browser_push.install()
    subscribe_in_page(page, live)
    old_row = subscription_row(live, old.endpoint)

    with live.db():
        generate_keys(force=True)  # every subscriber must resubscribe
        from statuspage.extensions import db

        db.session.commit()
    assert subscription_row(live, old.endpoint)["status"] == "expired"
    new = browser_push.prepare()  # for the new key
    browser_push.install()  # the stub now also knows the second subscription

    with page.expect_request(lambda r: r.url.endswith("/api/push/subscriptions") and r.method == "POST") as req:
        page.reload()
    posted = json.loads(req.value.post_data)
    assert posted["endpoint"] == new.endpoint
    assert posted["oldEndpoint"] == old.endpoint
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "subscribed")
    expect(page.locator("#subscribe-feedback")).to_have_text("")  # silently

    row = subscription_row(live, new.endpoint)
    assert row["status"] == "active"
    assert row["id"] == old_row["id"]  # the same subscriber, moved to the new endpoint
    assert subscription_row(live, old.endpoint) is None

    # Pushes signed with the new key reach the new endpoint.
    open_subscribe(page)
    page.get_by_role("button", name="Send me a test").click()
    [message] = live.sim.wait_for(1, token=new.token, timeout=30)
    assert message.payload["tag"] == "test"


SHOWN_AGAIN_JS = "() => document.dispatchEvent(new Event('visibilitychange'))"  # headless: always visible


def test_key_rotated_while_the_page_is_open_renews_when_it_is_shown_again(live, page, browser_push):
    """An open page does not reload when an admin rotates the keys: when it is shown again (at most
    once a minute) it looks at the site's key and renews silently, as a load would."""
    from statuspage.push.keys import generate_keys

    old = browser_push.prepare()
    browser_push.install()
    subscribe_in_page(page, live)
    old_row = subscription_row(live, old.endpoint)
    feedback = page.locator("#subscribe-feedback").text_content()
    key_requests: list[str] = []
    page.on("request", lambda r: key_requests.append(r.url) if r.url.endswith("/api/push/public-key") else None)

    with live.db():
        generate_keys(force=True)
        from statuspage.extensions import db

        db.session.commit()
    new = browser_push.prepare()
    page.evaluate(browser_push.script())  # the open page's stubbed PushManager knows the new one too

    # Shown again within a minute of the last look at the key: nothing is fetched.
    page.evaluate(SHOWN_AGAIN_JS)
    page.wait_for_timeout(500)
    assert key_requests == []

    page.evaluate("() => { const real = Date.now.bind(Date); Date.now = () => real() + 61 * 1000; }")
    with page.expect_response(lambda r: r.url.endswith("/api/push/subscriptions")
                              and r.request.method == "POST") as answer:
        page.evaluate(SHOWN_AGAIN_JS)
    assert answer.value.status == 200
    posted = json.loads(answer.value.request.post_data)
    assert (posted["endpoint"], posted["oldEndpoint"]) == (new.endpoint, old.endpoint)
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "subscribed")
    row = subscription_row(live, new.endpoint)
    assert row["status"] == "active" and row["id"] == old_row["id"]
    expect(page.locator("#subscribe-feedback")).to_have_text(feedback)  # silently: nothing new said
    assert len(key_requests) == 1

    # Shown again at once: no second look within the minute.
    page.evaluate(SHOWN_AGAIN_JS)
    page.wait_for_timeout(500)
    assert len(key_requests) == 1


# Chromium never fires pushsubscriptionchange (Firefox does when a push service rotates an
# endpoint), so the test dispatches one in the real service worker, whose pushManager.subscribe
# hands out the new simulator subscription; the worker's own code does the rest.
SUBSCRIPTION_CHANGE_JS = """
async (sub) => {
  self.registration.pushManager.subscribe = async () => ({ endpoint: sub.endpoint, toJSON: () => sub });
  try { self.dispatchEvent(new ExtendableEvent('pushsubscriptionchange')); } catch (e) { /* waitUntil */ }
  return true;
}
"""


def test_service_worker_resubscribes_on_pushsubscriptionchange(live, page, context, browser_push):
    old = browser_push.prepare()
    browser_push.install()
    subscribe_in_page(page, live, component="Email delivery")
    before = subscription_row(live, old.endpoint)
    new = live.sim.new_subscription(live.public_key())

    [worker] = [w for w in context.service_workers if w.url == live.url + "/sw-push.js"]
    with context.expect_event("request", lambda r: r.url.endswith("/api/push/subscriptions")
                              and r.method == "POST") as req:
        worker.evaluate(SUBSCRIPTION_CHANGE_JS, new.to_json())
    posted = json.loads(req.value.post_data)
    assert posted["endpoint"] == new.endpoint
    assert posted["oldEndpoint"] == old.endpoint  # remembered in IndexedDB by the page
    assert posted["components"] == [live.components["Email delivery"]]
    response = req.value.response()
    assert response is not None and response.status == 200

    row = subscription_row(live, new.endpoint)
    assert row["id"] == before["id"]
    assert row["status"] == "active"
    assert row["components"] == [live.components["Email delivery"]]
    assert subscription_row(live, old.endpoint) is None


def test_keyboard_only_visitor_can_subscribe(live, page, browser_push):
    sim_sub = browser_push.prepare()
    browser_push.install()
    page.goto(live.url + "/")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "unsubscribed")
    # Skip link, brand, three nav links, then the header's Subscribe button.
    toggle = page.locator("#subscribe-open")
    for _ in range(6):
        page.keyboard.press("Tab")
    expect(toggle).to_be_focused()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#subscribe-status")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#subscribe-choices summary")).to_be_focused()
    page.keyboard.press("Enter")  # unfold the choices

    def tab_to(locator, limit: int = 30) -> None:
        # Other tests on the shared server may have added components: tab until it is reached.
        for _ in range(limit):
            page.keyboard.press("Tab")
            if locator.evaluate("(el) => el === document.activeElement"):
                return
        raise AssertionError(f"{locator} never got the focus")

    page.keyboard.press("Tab")  # first the kind of notifications ("Send me"), then the components
    expect(page.locator("#subscribe-kind-all")).to_be_focused()
    tab_to(page.locator("#subscribe-all"))

    website = page.get_by_role("checkbox", name="Website", exact=True)
    tab_to(website)
    page.keyboard.press("Space")
    expect(website).to_be_checked()
    tab_to(page.get_by_role("button", name="Get notified"))
    page.keyboard.press("Enter")
    expect(page.locator("#push-subscribe")).to_have_attribute("data-state", "subscribed")
    # The button that was pressed is gone; focus stays in the control, not lost to <body>.
    assert page.evaluate("document.getElementById('push-subscribe').contains(document.activeElement)")
    assert subscription_row(live, sim_sub.endpoint)["components"] == [live.components["Website"]]
