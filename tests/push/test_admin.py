"""What admins see and do about push: the settings page (Configured + public key), the trigger
table, the subscriptions page and its "Send test" button, the deliveries page, and the matching
/api/v1 endpoints; all against the real RQ worker and the push-service simulator, CSRF on."""
from __future__ import annotations

import html
import re

import pytest

from statuspage.auth import create_user
from statuspage.extensions import db
from tests.push import helpers as ph

CHROME_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PASSWORD = "correct horse battery"


pytestmark = pytest.mark.app_config(WTF_CSRF_ENABLED=True)  # the forms are sent as browsers send them


@pytest.fixture(autouse=True)
def users(rq_app) -> None:
    with rq_app.app_context():
        create_user("admin@example.com", PASSWORD, "admin")
        create_user("editor@example.com", PASSWORD, "editor")
        db.session.commit()


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _browser(app, email: str = "admin@example.com"):
    """A signed-in admin browser session (with CSRF tokens, as the real forms send them)."""
    client = app.test_client()
    token = _csrf(client.get("/admin/login").get_data(as_text=True))
    r = client.post("/admin/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    return client


def _page(client, path: str) -> str:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return r.get_data(as_text=True)


def _flashes(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


# --- settings and triggers --------------------------------------------------------------------------

def test_push_page_shows_configured_and_public_key(rq_app):
    browser = _browser(rq_app)
    page = _page(browser, "/admin/push")
    assert "Not configured" in page and "vapid generate" in page

    public_key = ph.generate_keys(rq_app)
    page = _page(browser, "/admin/push")
    assert re.search(r'id="push-configured"><strong[^>]*>Configured</strong>', page)
    assert f'<code class="key" id="vapid-public-key">{public_key}</code>' in page
    assert 'id="notification-preview"' in page

    # A changed SECRET_KEY cannot decrypt the stored private key: the page says so and how to fix it.
    secret = rq_app.config["SECRET_KEY"]
    rq_app.config["SECRET_KEY"] = "another-secret-key"
    try:
        page = _page(_browser(rq_app), "/admin/push")
        assert "Not configured" in page and "SECRET_KEY changed" in html.unescape(page)
    finally:
        rq_app.config["SECRET_KEY"] = secret

    # Editors may look but not change push settings.
    editor = _browser(rq_app, "editor@example.com")
    page = _page(editor, "/admin/push")
    r = editor.post("/admin/push", data={"section": "settings", "csrf_token": _csrf(page)})
    assert r.status_code == 403


def _trigger_form(page: str, api) -> dict[str, str]:
    """The trigger table's form as the browser would submit it unchanged."""
    form = {"section": "triggers", "csrf_token": _csrf(page)}
    for t in api.get("/api/v1/triggers").json:
        event = t["event"]
        if t["enabled"]:
            form[f"enabled-{event}"] = "1"
        form[f"title-{event}"] = t["title_template"]
        form[f"body-{event}"] = t["body_template"]
        form[f"urgency-{event}"] = t["urgency"]
    return form


def test_triggers_and_settings_forms_save_and_change_what_is_sent(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    sub, _ = ph.subscribe(rq_api.client, sim, public_key)
    browser = _browser(rq_app)

    page = _page(browser, "/admin/push")
    form = _trigger_form(page, rq_api)
    form["title-incident.created"] = "{site_name} incident: {incident_name} ({impact})"
    form["body-incident.created"] = "{status}: {update_body}"
    form["urgency-incident.created"] = "normal"
    form["enabled-component.down"] = "1"
    del form["enabled-incident.updated"]  # unticked
    r = browser.post("/admin/push", data=form)
    assert r.status_code == 302
    assert "Triggers saved." in _flashes(_page(browser, "/admin/push"))
    triggers = {t["event"]: t for t in rq_api.get("/api/v1/triggers").json}
    assert triggers["incident.created"]["title_template"] == "{site_name} incident: {incident_name} ({impact})"
    assert triggers["incident.created"]["urgency"] == "normal"
    assert triggers["component.down"]["enabled"] is True
    assert triggers["incident.updated"]["enabled"] is False

    # A template naming an unknown placeholder is refused and nothing changes.
    page = _page(browser, "/admin/push")
    bad = _trigger_form(page, rq_api)
    bad["title-incident.created"] = "{site_name} {secret_key}"
    # The page comes back with the message next to the field and the typing kept.
    page = browser.post("/admin/push", data=bad).get_data(as_text=True)
    assert "The title uses {secret_key}, which is not a placeholder" in _flashes(page)
    assert 'id="error-title_template-incident.created"' in page and 'value="{site_name} {secret_key}"' in page
    assert rq_api.get("/api/v1/triggers").json[0]["title_template"] != "{site_name} {secret_key}"

    page = _page(browser, "/admin/push")
    r = browser.post("/admin/push", data={"section": "settings", "enabled": "1", "csrf_token": _csrf(page),
                                          "icon_url": "/static/icons/custom-icon.png", "badge_url": "",
                                          "debounce_seconds": "30"})
    assert r.status_code == 302
    settings = rq_api.get("/api/v1/push/settings").json
    assert (settings["icon"], settings["debounce_seconds"], settings["configured"]) == (
        "https://status.example.com/static/icons/custom-icon.png", 30, True)
    assert settings["public_key"] == public_key

    r = rq_api.post("/api/v1/incidents", json={"name": "Login errors", "impact": "critical", "body": "Looking."})
    incident_id = r.json["id"]
    rq_api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "identified", "body": "Found."})
    ph.run_worker(rq_app)
    [message] = sim.received(sub.token)  # incident.updated is off now
    assert message.payload["title"] == "Example Status incident: Login errors (Critical)"
    assert message.payload["body"] == "Investigating: Looking."
    assert message.payload["icon"] == "https://status.example.com/static/icons/custom-icon.png"
    assert message.headers["Urgency"] == "normal"
    [updated] = ph.event_rows(rq_app, "incident.updated")
    assert updated.state == "skipped"


# --- subscriptions ----------------------------------------------------------------------------------

def test_subscriptions_page_and_api_list_origin_browser_status(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    chrome, chrome_id = ph.subscribe(rq_api.client, sim, public_key, user_agent=CHROME_UA)
    firefox, firefox_id = ph.subscribe(rq_api.client, sim, public_key, user_agent=FIREFOX_UA)
    assert rq_api.client.delete("/api/push/subscriptions", json={"endpoint": firefox.endpoint}).status_code == 204

    page = _page(_browser(rq_app), "/admin/subscriptions")
    rows = dict(re.findall(r"<tr>\s*<td>(\d+)</td>(.*?)</tr>", page, re.S))
    assert sim.origin in rows[str(chrome_id)] and "Chrome" in rows[str(chrome_id)]
    assert ">active<" in rows[str(chrome_id)] and "Send test" in rows[str(chrome_id)]
    assert "Firefox" in rows[str(firefox_id)] and ">unsubscribed<" in rows[str(firefox_id)]
    assert "Send test" not in rows[str(firefox_id)]
    assert chrome.endpoint not in page and chrome.p256dh not in page  # capability URLs and keys stay private
    filtered = _page(_browser(rq_app), "/admin/subscriptions?status=unsubscribed")
    assert f"<td>{firefox_id}</td>" in filtered and f"<td>{chrome_id}</td>" not in filtered

    r = rq_api.get("/api/v1/subscriptions")
    assert r.status_code == 200
    assert r.json["counts"] == {"active": 1, "unsubscribed": 1}
    listed = {s["id"]: s for s in r.json["subscriptions"]}
    assert listed[chrome_id]["endpoint_origin"] == sim.origin
    assert (listed[chrome_id]["browser"], listed[chrome_id]["status"], listed[chrome_id]["components"]) == (
        "Chrome", "active", "all")
    assert listed[chrome_id]["created_at"] and listed[chrome_id]["last_active_at"]
    assert listed[firefox_id]["status"] == "unsubscribed"
    assert "endpoint" not in listed[chrome_id] and "p256dh" not in str(r.json)
    assert [s["id"] for s in rq_api.get("/api/v1/subscriptions?status=unsubscribed").json["subscriptions"]] == [
        firefox_id]
    r = rq_api.get("/api/v1/subscriptions?status=bogus")
    assert r.status_code == 400 and "status must be one of" in r.json["error"]
    assert rq_api.client.get("/api/v1/subscriptions").status_code == 401


def test_send_test_button_queues_a_push_that_reaches_the_browser(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    sub, sub_id = ph.subscribe(rq_api.client, sim, public_key)
    gone, gone_id = ph.subscribe(rq_api.client, sim, public_key)
    rq_api.client.delete("/api/push/subscriptions", json={"endpoint": gone.endpoint})

    browser = _browser(rq_app)
    page = _page(browser, "/admin/subscriptions")
    r = browser.post(f"/admin/subscriptions/{sub_id}/test", data={"csrf_token": _csrf(page)})
    assert r.status_code == 302 and r.headers["Location"].endswith("/admin/subscriptions")
    assert f"Test push queued for subscription {sub_id}." in _flashes(_page(browser, "/admin/subscriptions"))
    assert sim.attempts() == []  # queued, not sent from the request
    ph.run_worker(rq_app)
    [message] = sim.received(sub.token)
    assert (message.payload["event"], message.payload["title"]) == ("test", "Example Status: test notification")

    page = _page(browser, "/admin/subscriptions")
    browser.post(f"/admin/subscriptions/{gone_id}/test", data={"csrf_token": _csrf(page)})
    # One message for the same refusal, in the admin UI, the admin API and the visitor API.
    refusal = f"subscription {gone_id} is unsubscribed; only active subscriptions can receive a test push"
    assert refusal in _flashes(_page(browser, "/admin/subscriptions"))
    # Without the CSRF token the form is refused (and nothing is queued: see the count below).
    assert browser.post(f"/admin/subscriptions/{sub_id}/test").status_code == 303
    assert "Your form expired" in _flashes(_page(browser, "/admin/subscriptions"))

    # The same through the API.
    r = rq_api.post(f"/api/v1/subscriptions/{sub_id}/test")
    assert r.status_code == 202 and r.json == {"queued": True, "subscription": sub_id}
    r = rq_api.post(f"/api/v1/subscriptions/{gone_id}/test")
    assert (r.status_code, r.json["error"]) == (400, refusal)
    r = rq_api.client.post("/api/push/test", json={"endpoint": gone.endpoint})
    assert (r.status_code, r.json["error"]) == (400, refusal)
    assert rq_api.post("/api/v1/subscriptions/999999/test").status_code == 404
    ph.run_worker(rq_app)
    assert len(sim.received(sub.token)) == 2 and sim.received(gone.token) == []


# --- deliveries -------------------------------------------------------------------------------------

def test_events_page_and_api_counts_match_what_happened(rq_app, sim, rq_api):
    public_key = ph.generate_keys(rq_app)
    ok = [ph.subscribe(rq_api.client, sim, public_key)[0] for _ in range(2)]
    gone, _ = ph.subscribe(rq_api.client, sim, public_key)
    bad, _ = ph.subscribe(rq_api.client, sim, public_key)
    slow, _ = ph.subscribe(rq_api.client, sim, public_key)
    sim.expire(gone.token)
    sim.respond_with(bad.token, 400)
    sim.respond_with(slow.token, 429, retry_after=60, times=1)

    incident_id = rq_api.post("/api/v1/incidents", json={"name": "Partial outage", "body": "Investigating."}).json["id"]
    rq_api.post(f"/api/v1/incidents/{incident_id}/updates", json={"status": "identified", "notify": False})
    ph.run_worker(rq_app)
    assert sorted(m.token for m in sim.received()) == sorted(s.token for s in ok)

    events = {e["type"]: e for e in rq_api.get("/api/v1/events").json}
    created, updated = events["incident.created"], events["incident.updated"]
    assert created["counts"] == {"queued": 1, "sent": 2, "expired": 1, "failed": 1, "targeted": 5,
                                 "shown": 0, "opened": 0}
    assert (created["state"], created["incident_id"], created["subject"]) == ("sending", incident_id, "Partial outage")
    assert (updated["state"], updated["notify"]) == ("skipped", False)
    assert updated["counts"] == {"queued": 0, "sent": 0, "expired": 0, "failed": 0, "targeted": 0,
                                 "shown": 0, "opened": 0}

    browser = _browser(rq_app)
    page = _page(browser, "/admin/events")

    def cells(event_id: int) -> dict[str, str]:
        row = re.search(rf'<tr data-event-id="{event_id}">(.*?)</tr>', page, re.S).group(1)
        return dict(re.findall(r'<td class="count-(\w+)">(\d+)</td>', row))

    assert cells(created["id"]) == {"queued": "1", "sent": "2", "expired": "1", "failed": "1", "shown": "0",
                                    "opened": "0"}
    assert cells(updated["id"]) == {"queued": "0", "sent": "0", "expired": "0", "failed": "0", "shown": "0",
                                    "opened": "0"}
    assert "Delivery problems" in page and "400 Bad Request" in page

    # The rate-limited one goes out on retry: the counts follow.
    ph.make_due(rq_app)
    ph.run_worker(rq_app)
    [created] = [e for e in rq_api.get("/api/v1/events").json if e["type"] == "incident.created"]
    assert created["state"] == "done"
    assert created["counts"] == {"queued": 0, "sent": 3, "expired": 1, "failed": 1, "targeted": 5,
                                 "shown": 0, "opened": 0}
    page = _page(browser, "/admin/events")
    assert cells(created["id"]) == {"queued": "0", "sent": "3", "expired": "1", "failed": "1", "shown": "0",
                                    "opened": "0"}

    # Acknowledging clears the alert box.
    r = browser.post("/admin/alerts/ack", data={"csrf_token": _csrf(page)})
    assert r.status_code == 302
    assert "Delivery problems" not in _page(browser, "/admin/events")
