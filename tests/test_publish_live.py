"""The snapshot under real concurrency: a burst of API changes from several threads against a live
server, published by a real `flask worker` (RQ) into a handful of rounds; and a publish missed
while Redis was down, caught up by the sweeper."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from statuspage.extensions import db
from statuspage.models import PublishRequest, PublishStatus
from tests.conftest import TEST_SECRET, create_admin_token, make_app
from tests.hardening_support import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _pending(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count(PublishRequest.id))).scalar_one()


def _rounds(app) -> int:
    with app.app_context():
        status = db.session.get(PublishStatus, 1)
        return status.rounds if status else 0


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        time.sleep(0.05)


def test_a_burst_of_50_api_changes_is_published_in_a_handful_of_rounds(tmp_path, pg_database, redis_url):
    interval = 0.5
    app = make_app(pg_database, tmp_path, REDIS_URL=redis_url, JOBS_EAGER=False, PUBLIC_SNAPSHOT_DIR=None,
                   PUBLISH_MIN_INTERVAL=interval)
    token = create_admin_token(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    def call(method: str, path: str, body: dict) -> dict:
        request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    ids = [call("POST", "/api/v1/components", {"name": f"Service {n}"})["id"] for n in range(5)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PUBLIC_", "PUSH_"))}
    env.update({"DATABASE_URL": pg_database, "REDIS_URL": redis_url, "SECRET_KEY": TEST_SECRET,
                "INSTANCE_PATH": os.environ["INSTANCE_PATH"], "SITE_URL": app.config["SITE_URL"],
                "SITE_NAME": app.config["SITE_NAME"], "SWEEP_INTERVAL": "3600", "LOG_LEVEL": "WARNING",
                "PUBLISH_MIN_INTERVAL": str(interval)})
    log = (tmp_path / "worker.log").open("ab")
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    index = Path(os.environ["INSTANCE_PATH"]) / "public" / "index.html"
    try:
        # The worker's first sweep publishes the whole site (no snapshot yet).
        _wait(lambda: index.exists() and _pending(app) == 0, 120, "the first full publish")
        before = _rounds(app)
        start = time.monotonic()

        def renames(component_id: int) -> None:
            for n in range(10):
                call("PATCH", f"/api/v1/components/{component_id}", {"name": f"Service {component_id} v{n}"})

        threads = [threading.Thread(target=renames, args=(cid,)) for cid in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        burst = time.monotonic() - start
        finals = [f"Service {cid} v9".encode() for cid in ids]
        _wait(lambda: _pending(app) == 0 and all(name in index.read_bytes() for name in finals), 60,
              "the final names published")
        rounds = _rounds(app) - before
        summary = json.loads((index.parent / "api/v2/components.json").read_text())
        assert {c["name"] for c in summary["components"]} == {f"Service {cid} v9" for cid in ids}
        # Coalesced: rounds start at most every `interval`, so 50 changes in `burst` seconds make
        # at most one round per interval (plus the one after the burst), far fewer than 50.
        assert rounds <= burst / interval + 2, (rounds, burst)
        assert rounds < 25, rounds
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        server.shutdown()


def test_a_publish_missed_while_redis_was_down_is_caught_up_by_the_sweeper(tmp_path, pg_database):
    from statuspage.sweeper import sweep

    with PrivateRedis(tmp_path) as redis:
        app = make_app(pg_database, tmp_path, REDIS_URL=redis.url, JOBS_EAGER=False, PUBLIC_SNAPSHOT_DIR=None,
                       PUBLISH_SWEEP_AFTER=0)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {create_admin_token(app)}"}
        component = client.post("/api/v1/components", json={"name": "Before"}, headers=headers).get_json()["id"]
        with app.app_context():
            sweep()  # the first full publish
        index = Path(os.environ["INSTANCE_PATH"]) / "public" / "index.html"
        assert b"Before" in index.read_bytes()
        redis.stop()
        answer = client.patch(f"/api/v1/components/{component}", json={"name": "Changed while Redis was down"},
                              headers=headers)
        assert answer.status_code == 200  # the change is saved; its publish job could not be queued
        assert _pending(app) > 0 and b"Changed while Redis was down" not in index.read_bytes()
        redis.start()
        with app.app_context():
            sweep()
        assert b"Changed while Redis was down" in index.read_bytes()
        assert _pending(app) == 0


def test_a_publish_only_worker_publishes_and_leaves_other_jobs_alone(tmp_path, pg_database, redis_url):
    from statuspage.jobs import rq_queue
    from statuspage.publish.publisher import publish_pending

    app = make_app(pg_database, tmp_path, REDIS_URL=redis_url, JOBS_EAGER=False, PUBLIC_SNAPSHOT_DIR=None)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {create_admin_token(app)}"}
    component = client.post("/api/v1/components", json={"name": "Before"}, headers=headers).get_json()["id"]
    with app.app_context():
        publish_pending()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PUBLIC_", "PUSH_"))}
    env.update({"DATABASE_URL": pg_database, "REDIS_URL": redis_url, "SECRET_KEY": TEST_SECRET,
                "INSTANCE_PATH": os.environ["INSTANCE_PATH"], "SITE_URL": app.config["SITE_URL"],
                "SITE_NAME": app.config["SITE_NAME"], "LOG_LEVEL": "WARNING"})
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--publish-only"], cwd=ROOT,
                              env=env, stdout=(tmp_path / "worker.log").open("ab"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    index = Path(os.environ["INSTANCE_PATH"]) / "public" / "index.html"
    try:
        client.post("/api/v1/incidents", json={"name": "Published by the small worker", "body": "x"}, headers=headers)
        client.patch(f"/api/v1/components/{component}", json={"status": "major_outage"}, headers=headers)
        _wait(lambda: b"Published by the small worker" in index.read_bytes() and _pending(app) == 0, 60,
              "the publish-only worker to publish")
        with app.app_context():
            assert rq_queue(app).count >= 1  # the fan-out jobs wait for an ordinary worker
    finally:
        worker.terminate()
        worker.wait(timeout=30)
