"""last_seen_at (the page re-sends its subscription on visits) and PUSH_STALE_DAYS: subscriptions
with no successful delivery and no visit for that long are expired by the sweeper; on Apple's push
service (which can keep answering 201 for a subscription Safari revoked) only visits count."""
from __future__ import annotations

from datetime import timedelta

import pytest

from statuspage.extensions import db
from statuspage.models import Subscription
from statuspage.timeutil import utcnow
from tests.push import helpers as ph


def _age(app, sub_id: int, *, created: int, active: int | None, seen: int | None) -> None:
    """Move a subscription's timestamps this many days into the past (None = never)."""
    now = utcnow()
    with app.app_context():
        row = db.session.get(Subscription, sub_id)
        row.created_at = now - timedelta(days=created)
        row.last_active_at = None if active is None else now - timedelta(days=active)
        row.last_seen_at = None if seen is None else now - timedelta(days=seen)
        db.session.commit()


def _sweep(app) -> str:
    result = app.test_cli_runner().invoke(args=["sweep"])
    assert result.exit_code == 0, result.output
    return result.output


def test_each_post_of_the_subscription_stamps_last_seen(eager_app, eager_api):
    ph.generate_keys(eager_app)
    body = ph.browser_subscription()
    r = eager_api.client.post("/api/push/subscriptions", json=body)
    assert r.status_code == 201
    sub_id = r.json["id"]
    first = ph.sub_row(eager_app, sub_id).last_seen_at
    assert first is not None and abs((utcnow() - first).total_seconds()) < 60
    _age(eager_app, sub_id, created=30, active=30, seen=30)
    assert eager_api.client.post("/api/push/subscriptions", json=body).status_code == 200  # the visit
    row = ph.sub_row(eager_app, sub_id)
    assert abs((utcnow() - row.last_seen_at).total_seconds()) < 60
    assert (utcnow() - row.last_active_at).days == 30  # a visit is not a delivery
    [listed] = eager_api.get("/api/v1/subscriptions").json["subscriptions"]
    assert listed["last_seen_at"] is not None


def test_sweeper_expires_subscriptions_with_no_delivery_and_no_visit(eager_app, eager_api):
    ph.generate_keys(eager_app)
    client = eager_api.client
    bodies = [ph.browser_subscription() for _ in range(5)]
    ids = [client.post("/api/push/subscriptions", json=b).json["id"] for b in bodies]
    silent, delivered, visited, young, never_seen_but_delivered = ids
    _age(eager_app, silent, created=90, active=70, seen=61)
    _age(eager_app, delivered, created=90, active=10, seen=80)
    _age(eager_app, visited, created=90, active=90, seen=5)
    _age(eager_app, young, created=30, active=None, seen=None)
    _age(eager_app, never_seen_but_delivered, created=200, active=59, seen=None)

    assert "'stale': 1" in _sweep(eager_app)
    statuses = {i: (ph.sub_row(eager_app, i).status, ph.sub_row(eager_app, i).status_reason) for i in ids}
    assert statuses[silent] == ("expired", "stale: no delivery and no visit for 60 days")
    assert all(statuses[i] == ("active", None) for i in ids if i != silent)
    assert "'stale': 0" in _sweep(eager_app)  # nothing twice

    # The browser comes back: its next visit re-sends the subscription and it is active again.
    assert client.post("/api/push/subscriptions", json=bodies[0]).status_code == 200
    assert ph.sub_row(eager_app, silent).status == "active"


def test_on_apple_endpoints_only_visits_count_deliveries_do_not(eager_app, eager_api):
    """Safari can keep answering 201 for a subscription it revoked: a "successful" delivery to an
    Apple endpoint proves nothing, so only a visit keeps it."""
    ph.generate_keys(eager_app)
    client = eager_api.client
    apple = "https://web.push.apple.com/QG"
    bodies = {
        "apple_delivered": ph.browser_subscription(apple + "delivered"),
        "apple_visited": ph.browser_subscription(apple + "visited"),
        "apple_young": ph.browser_subscription(apple + "young"),
        "apple_other_host": ph.browser_subscription("https://api.push.apple.com/3/device/x"),
        # Not Apple: ".push.apple.com/" appears only in the path of an FCM endpoint.
        "fcm_lookalike_path": ph.browser_subscription("https://fcm.googleapis.com/fcm/send/x.push.apple.com/y"),
        "fcm_delivered": ph.browser_subscription(),
    }
    ids = {}
    for name, body in bodies.items():
        r = client.post("/api/push/subscriptions", json=body)
        assert r.status_code == 201, r.json
        ids[name] = r.json["id"]
    _age(eager_app, ids["apple_delivered"], created=90, active=1, seen=61)
    _age(eager_app, ids["apple_visited"], created=90, active=None, seen=5)
    _age(eager_app, ids["apple_young"], created=30, active=None, seen=None)
    _age(eager_app, ids["apple_other_host"], created=200, active=2, seen=None)
    _age(eager_app, ids["fcm_lookalike_path"], created=90, active=10, seen=80)
    _age(eager_app, ids["fcm_delivered"], created=90, active=10, seen=None)

    assert "'stale': 2" in _sweep(eager_app)
    statuses = {name: (ph.sub_row(eager_app, i).status, ph.sub_row(eager_app, i).status_reason)
                for name, i in ids.items()}
    assert statuses == {
        "apple_delivered": ("expired", "stale: no visit for 60 days"),
        "apple_visited": ("active", None),
        "apple_young": ("active", None),
        "apple_other_host": ("expired", "stale: no visit for 60 days"),
        "fcm_lookalike_path": ("active", None),
        "fcm_delivered": ("active", None),
    }


@pytest.mark.app_config(PUSH_STALE_DAYS=0)
def test_stale_days_0_never_expires(eager_app, eager_api):
    ph.generate_keys(eager_app)
    sub_id = eager_api.client.post("/api/push/subscriptions", json=ph.browser_subscription()).json["id"]
    _age(eager_app, sub_id, created=900, active=900, seen=None)
    assert "'stale': 0" in _sweep(eager_app)
    assert ph.sub_row(eager_app, sub_id).status == "active"


@pytest.mark.app_config(PUSH_STALE_DAYS=7)
def test_stale_days_is_configurable(eager_app, eager_api):
    ph.generate_keys(eager_app)
    sub_id = eager_api.client.post("/api/push/subscriptions", json=ph.browser_subscription()).json["id"]
    _age(eager_app, sub_id, created=8, active=8, seen=8)
    assert "'stale': 1" in _sweep(eager_app)
    assert ph.sub_row(eager_app, sub_id).status_reason == "stale: no delivery and no visit for 7 days"
