"""Key management on the admin's push settings page: generate keys when there are none; rotate
them behind a confirmation that names how many subscriptions will expire (and refuses a count
that is no longer true); keys from the environment are left alone; editors cannot do either."""
from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from statuspage.auth import create_user
from statuspage.extensions import db
from statuspage.models import AdminLog
from tests.push import helpers as ph

PASSWORD = "correct horse battery"
pytestmark = pytest.mark.app_config(WTF_CSRF_ENABLED=True)  # the forms are sent as browsers send them


def _text(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def _browser(app, email: str = "admin@example.com", role: str = "admin"):
    with app.app_context():
        create_user(email, PASSWORD, role)
        db.session.commit()
    client = app.test_client()
    token = _csrf(client.get("/admin/login").get_data(as_text=True))
    assert client.post("/admin/login", data={"email": email, "password": PASSWORD,
                                             "csrf_token": token}).status_code == 302
    return client


def _post(client, path: str, data: dict, page: str = "/admin/push"):
    token = _csrf(client.get(page).get_data(as_text=True))
    return client.post(path, data={**data, "csrf_token": token}, follow_redirects=True)


def _public_key(app) -> str | None:
    r = app.test_client().get("/api/push/public-key")
    return r.json["publicKey"] if r.status_code == 200 else None


def test_admin_generates_keys_when_there_are_none(eager_app):
    browser = _browser(eager_app)
    page = browser.get("/admin/push").get_data(as_text=True)
    assert 'id="generate-keys"' in page and "Not configured" in page and 'id="rotate-keys"' not in page
    assert _public_key(eager_app) is None

    r = _post(browser, "/admin/push/keys/generate", {"subject": "mailto:ops@example.org"})
    assert r.status_code == 200 and "VAPID keys generated" in _text(r)
    public_key = _public_key(eager_app)
    assert public_key and public_key in r.get_data(as_text=True)
    assert 'id="generate-keys"' not in r.get_data(as_text=True) and 'id="rotate-keys"' in r.get_data(as_text=True)

    r = _post(browser, "/admin/push/keys/generate", {"subject": ""})  # a second time: refused
    assert "VAPID keys already exist; rotate them instead" in _text(r)
    assert _public_key(eager_app) == public_key
    with eager_app.app_context():
        log = db.session.execute(select(AdminLog.action, AdminLog.actor, AdminLog.detail)).all()
    assert ("vapid.generated", "admin@example.com", "subject mailto:ops@example.org") in log


def test_a_subject_push_services_would_refuse_generates_nothing(eager_app):
    browser = _browser(eager_app)
    r = _post(browser, "/admin/push/keys/generate", {"subject": "ftp://example.org"})
    assert r.status_code == 200 and "it must be a mailto: address or an https: URL" in _text(r)
    assert _public_key(eager_app) is None


def test_rotation_names_the_subscriptions_that_expire_and_they_do(eager_app, sim):
    old_key = ph.generate_keys(eager_app)
    client = eager_app.test_client()
    first, first_id = ph.subscribe(client, sim, old_key)
    second, second_id = ph.subscribe(client, sim, old_key)
    left, left_id = ph.subscribe(client, sim, old_key)
    assert client.delete("/api/push/subscriptions", json={"endpoint": left.endpoint}).status_code == 204
    browser = _browser(eager_app)
    assert "2 active subscriptions would expire" in _text(browser.get("/admin/push"))

    confirm = browser.get("/admin/push/keys/rotate")
    assert confirm.status_code == 200
    assert "2 active subscriptions will expire" in _text(confirm)
    assert "Rotate keys and expire 2 subscriptions" in _text(confirm)
    assert 'name="confirm_expiring" value="2"' in confirm.get_data(as_text=True)
    assert _public_key(eager_app) == old_key  # asking changes nothing

    r = _post(browser, "/admin/push/keys/rotate", {"confirm_expiring": "2", "subject": ""},
              page="/admin/push/keys/rotate")
    assert "VAPID keys rotated: 2 subscription(s) expired" in _text(r)
    new_key = _public_key(eager_app)
    assert new_key and new_key != old_key
    assert [(ph.sub_row(eager_app, i).status, ph.sub_row(eager_app, i).status_reason)
            for i in (first_id, second_id)] == [("expired", "key rotated")] * 2
    assert ph.sub_row(eager_app, left_id).status == "unsubscribed"
    with eager_app.app_context():
        [detail] = db.session.execute(select(AdminLog.detail).where(AdminLog.action == "vapid.rotated")).scalars()
    assert detail.endswith("2 subscription(s) expired")

    # The page's silent resubscription (a new subscription with the new key) receives; the old ones never again.
    fresh, _ = ph.subscribe(client, sim, new_key)
    api = ph.Api(client, ph.create_admin_token(eager_app, "api@example.com"))
    assert api.post("/api/v1/incidents", {"name": "After rotation"}).status_code == 201
    assert [len(sim.received(s.token)) for s in (first, second, fresh)] == [0, 0, 1]


def test_rotation_confirmed_with_a_stale_count_changes_nothing(eager_app, sim):
    key = ph.generate_keys(eager_app)
    client = eager_app.test_client()
    _, sub_id = ph.subscribe(client, sim, key)
    browser = _browser(eager_app)
    page = "/admin/push/keys/rotate"
    assert "1 active subscription will expire" in _text(browser.get(page))
    ph.subscribe(client, sim, key)  # someone subscribes while the admin reads the page
    r = _post(browser, page, {"confirm_expiring": "1"}, page=page)
    assert "2 subscription(s) would expire now, not 1; confirm again" in _text(r)
    assert "2 active subscriptions will expire" in _text(r)  # asked again, with the true count
    assert _public_key(eager_app) == key and ph.sub_row(eager_app, sub_id).status == "active"
    for bad in ("", "two", "-1", "1e3"):
        r = _post(browser, page, {"confirm_expiring": bad}, page=page)
        assert r.status_code == 200 and _public_key(eager_app) == key, bad


def test_editors_cannot_generate_or_rotate(eager_app):
    browser = _browser(eager_app, "editor@example.com", "editor")
    page = browser.get("/admin/push").get_data(as_text=True)
    assert 'id="generate-keys"' not in page
    token = _csrf(page)
    assert browser.post("/admin/push/keys/generate", data={"csrf_token": token}).status_code == 403
    assert browser.get("/admin/push/keys/rotate").status_code == 403
    assert browser.post("/admin/push/keys/rotate", data={"csrf_token": token, "confirm_expiring": "0"}
                        ).status_code == 403
    assert _public_key(eager_app) is None


def test_keys_from_the_environment_are_left_alone(tmp_path, pg_database, sim):
    from statuspage.push.crypto import generate_vapid_keypair

    private, public = generate_vapid_keypair()
    app = ph.build_app("sqlite", tmp_path, pg_database, sim, WTF_CSRF_ENABLED=True,
                       VAPID_PUBLIC_KEY=public, VAPID_PRIVATE_KEY=private)
    try:
        browser = _browser(app)
        page = browser.get("/admin/push")
        assert "come from VAPID_PUBLIC_KEY / VAPID_PRIVATE_KEY" in _text(page)
        assert 'id="generate-keys"' not in page.get_data(as_text=True)
        assert 'id="rotate-keys"' not in page.get_data(as_text=True)
        r = _post(browser, "/admin/push/keys/generate", {})
        assert "the keys come from VAPID_PUBLIC_KEY" in _text(r)
        r = browser.get("/admin/push/keys/rotate", follow_redirects=True)
        assert "change them there" in _text(r)
        assert _public_key(app) == public
    finally:
        ph.dispose(app)
