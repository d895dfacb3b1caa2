"""One device, one row: endpoints are stored in one canonical spelling and subscribing is an upsert
on it, so differently written URLs, unsubscribing any spelling and 24 simultaneous POSTs of one
endpoint all end in one row -- and one notification per event. On SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from collections import Counter

import pytest
import requests
from sqlalchemy import func, select

from statuspage.extensions import db
from statuspage.models import Component, Subscription, subscription_components
from statuspage.push.subscriptions import canonical_endpoint, endpoint_problem
from tests.conftest import Api, create_admin_token
from tests.livehelpers import LiveServer
from tests.push import helpers as ph

FCM = "https://fcm.googleapis.com/fcm/send/dEvIcE-ToKeN"


@pytest.mark.parametrize("spelling", [
    FCM, "HTTPS://fcm.googleapis.com/fcm/send/dEvIcE-ToKeN", "https://FCM.GoogleAPIs.com/fcm/send/dEvIcE-ToKeN",
    "https://fcm.googleapis.com:443/fcm/send/dEvIcE-ToKeN", "https://fcm.googleapis.com:0443/fcm/send/dEvIcE-ToKeN",
    "hTTpS://Fcm.GOOGLEAPIS.com:00443/fcm/send/dEvIcE-ToKeN",
])
def test_every_spelling_of_an_endpoint_has_one_canonical_form(sqlite_app, spelling):
    with sqlite_app.app_context():
        assert endpoint_problem(spelling) is None
    assert canonical_endpoint(spelling) == FCM  # the path keeps its case: it is the device's token


def test_canonical_form_keeps_other_ports_and_the_query():
    assert canonical_endpoint("HTTP://127.0.0.1:08099/push/x?a=B") == "http://127.0.0.1:8099/push/x?a=B"
    assert canonical_endpoint("http://LOCALHOST:80/p") == "http://localhost/p"
    assert canonical_endpoint("https://web.push.apple.com/QGz?x") == "https://web.push.apple.com/QGz?x"


def _count(app) -> int:
    with app.app_context():
        n = db.session.execute(select(func.count()).select_from(Subscription)).scalar_one()
        db.session.remove()
    return n


def _spellings(endpoint: str) -> list[str]:
    scheme, rest = endpoint.split("://", 1)
    host, path = rest.split("/", 1)
    name, _, port = host.partition(":")
    padded = f"{name}:0{port}" if port else f"{name}:0443"
    return [endpoint, f"{scheme.upper()}://{host.upper()}/{path}", f"{scheme}://{padded}/{path}"]


@pytest.fixture
def eager(request, tmp_path, pg_database, sim):
    kind = request.param if hasattr(request, "param") else "sqlite"
    app = ph.build_app(kind, tmp_path, pg_database, sim)
    yield app
    ph.dispose(app)


@pytest.mark.parametrize("eager", ["sqlite", "postgresql"], indirect=True)
def test_one_device_spelled_three_ways_is_one_row_and_gets_each_notification_once(eager, sim):
    app = eager
    client = app.test_client()
    body = sim.new_subscription(ph.generate_keys(app)).to_json()
    codes = [client.post("/api/push/subscriptions", json={**body, "endpoint": spelling}).status_code
             for spelling in _spellings(body["endpoint"])]
    assert codes == [201, 200, 200]
    assert _count(app) == 1
    with app.app_context():
        assert db.session.execute(select(Subscription.endpoint)).scalar_one() == body["endpoint"]
    api = Api(client, create_admin_token(app))
    assert api.post("/api/v1/incidents", json={"name": "Down"}).status_code == 201
    assert [m.payload["title"] for m in sim.received()] == ["Example Status: Down"]


@pytest.mark.parametrize("eager", ["sqlite", "postgresql"], indirect=True)
def test_unsubscribing_any_spelling_removes_the_one_row_and_resubscribing_revives_it(eager, sim):
    app = eager
    client = app.test_client()
    body = sim.new_subscription(ph.generate_keys(app)).to_json()
    first = client.post("/api/push/subscriptions", json=body)
    upper, padded = _spellings(body["endpoint"])[1:]
    assert client.delete("/api/push/subscriptions", json={"endpoint": upper}).status_code == 204
    with app.app_context():
        assert db.session.execute(select(Subscription.status)).scalars().all() == ["unsubscribed"]
    again = client.post("/api/push/subscriptions", json={**body, "endpoint": padded})
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert client.post("/api/push/test", json={"endpoint": upper}).status_code == 202
    api = Api(client, create_admin_token(app))
    assert api.post("/api/v1/incidents", json={"name": "Down"}).status_code == 201
    assert len([m for m in sim.received() if m.payload["event"] == "incident.created"]) == 1


@pytest.mark.parametrize("eager", ["sqlite", "postgresql"], indirect=True)
def test_old_endpoint_in_any_spelling_moves_the_row(eager, sim):
    app = eager
    client = app.test_client()
    key = ph.generate_keys(app)
    old = sim.new_subscription(key).to_json()
    first = client.post("/api/push/subscriptions", json=old).json["id"]
    new = sim.new_subscription(key).to_json()
    moved = client.post("/api/push/subscriptions", json={**new, "oldEndpoint": _spellings(old["endpoint"])[1]})
    assert moved.status_code == 200 and moved.json["id"] == first
    with app.app_context():
        assert db.session.execute(select(Subscription.endpoint)).scalars().all() == [new["endpoint"]]
    # the old endpoint again, now with a row for it missing: a new row, the moved one untouched
    assert client.post("/api/push/subscriptions", json=old).status_code == 201
    assert _count(app) == 2


@pytest.mark.parametrize("eager", ["sqlite", "postgresql"], indirect=True)
def test_twenty_four_simultaneous_posts_of_one_endpoint_never_answer_500(eager, sim):
    """The issue saw an IntegrityError 500 on 3-9% of 20 simultaneous POSTs of one endpoint.
    Here 24 threads post together (in several spellings, with a component filter) to the app
    served by a threaded server, five rounds: every answer is 200/201, exactly one is 201 per
    endpoint, and there is one row with one filter."""
    app = eager
    ph.generate_keys(app)
    with app.app_context():
        component = Component(name="API")
        db.session.add(component)
        db.session.commit()
        cid = component.id
        db.session.remove()
    with LiveServer(app) as server:
        for _ in range(5):
            body = ph.browser_subscription()
            spellings = _spellings(body["endpoint"])
            barrier = threading.Barrier(24)
            codes: list[int] = []

            def post(n: int, body=body, spellings=spellings, barrier=barrier, codes=codes) -> None:
                data = {**body, "endpoint": spellings[n % 3], "components": [cid]}
                barrier.wait()
                codes.append(requests.post(server.url + "/api/push/subscriptions", json=data, timeout=60).status_code)

            threads = [threading.Thread(target=post, args=(n,)) for n in range(24)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert Counter(codes) == {201: 1, 200: 23}, Counter(codes)
            with app.app_context():
                rows = db.session.execute(select(Subscription.id)
                                          .where(Subscription.endpoint == body["endpoint"])).all()
                assert len(rows) == 1
                links = db.session.execute(select(subscription_components.c.component_id)
                                           .where(subscription_components.c.subscription_id == rows[0][0])).all()
                assert [tuple(link) for link in links] == [(cid,)]
                db.session.remove()
    assert _count(app) == 5
