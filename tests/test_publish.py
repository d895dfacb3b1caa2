"""The published snapshot: files, the app serving the same bytes, rebuilds on every kind of change,
bounded cost, deleted things' files removed, failures that keep the previous page, a full disk.

Runs on SQLite and PostgreSQL with eager jobs (the publish job runs right after each commit); the
concurrent paths (a burst through a live server and a real RQ worker, Redis down) are in
test_publish_live.py.
"""
from __future__ import annotations

import gzip
import json
import os
import resource
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from jinja2 import ChoiceLoader, DictLoader
from sqlalchemy import func, select, update

from statuspage.extensions import db
from statuspage.models import Component, Incident, PublishRequest, PublishStatus
from statuspage.publish.publisher import Publisher, publish_pending
from statuspage.publish.registry import REGISTRY
from statuspage.publish.store import file_for
from tests.conftest import TEST_SECRET
from tests.hardening_support import with_keys

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.app_config(PUBLIC_SNAPSHOT_DIR=None)  # the default: <instance>/public

V2 = ["summary.json", "status.json", "components.json", "incidents.json", "incidents/unresolved.json",
      "scheduled-maintenances.json", "scheduled-maintenances/upcoming.json", "scheduled-maintenances/active.json"]


def root(app) -> Path:
    return app.extensions["statuspage_snapshot"].root


def published(app, path: str) -> bytes:
    return (root(app) / file_for(path)).read_bytes()


def mtimes(app) -> dict[str, int]:
    return {p.relative_to(root(app)).as_posix(): p.stat().st_mtime_ns for p in root(app).rglob("*") if p.is_file()}


@pytest.fixture
def world(app, api):
    """12 components in 3 groups, one open incident, three resolved ones, one maintenance."""
    groups = [api.post("/api/v1/component-groups", json={"name": f"Group {g}"}).get_json()["id"] for g in range(3)]
    ids = [api.post("/api/v1/components", json={"name": f"Service {i}", "group_id": groups[i % 3]}).get_json()["id"]
           for i in range(12)]
    open_id = api.post("/api/v1/incidents", json={"name": "Elevated errors", "body": "Looking",
                                                 "components": {str(ids[0]): "major_outage"}}).get_json()["id"]
    resolved = []
    for n in range(3):
        iid = api.post("/api/v1/incidents", json={"name": f"Old outage {n}", "body": "Was bad"}).get_json()["id"]
        api.post(f"/api/v1/incidents/{iid}/updates", json={"status": "resolved", "body": "Fixed"})
        resolved.append(iid)
    maint = api.post("/api/v1/maintenances", json={"name": "DB upgrade", "scheduled_for": "2099-01-01T10:00:00Z",
                                                  "scheduled_until": "2099-01-01T11:00:00Z"}).get_json()["id"]
    return {"components": ids, "groups": groups, "open": open_id, "resolved": resolved, "maintenance": maint}


def test_every_public_response_is_a_file_in_the_static_site_layout_with_gz_siblings(app, world, runner):
    result = runner.invoke(args=["publish"])
    assert result.exit_code == 0, result.output
    files = mtimes(app)
    expected = ["index.html", "history/index.html", "feed.atom", "sw-push.js", "manifest.webmanifest",
                *(f"incidents/{i}/index.html" for i in [world["open"], *world["resolved"], world["maintenance"]]),
                *(f"api/v2/{name}" for name in V2)]
    for rel in expected:
        assert rel in files and rel + ".gz" in files, rel
        raw = (root(app) / rel).read_bytes()
        assert gzip.decompress((root(app) / (rel + ".gz")).read_bytes()) == raw
    assert any(f.startswith("static/css/style.") and f.endswith(".css") and f.count(".") == 2 for f in files)
    assert (root(app) / ".build-id").exists()
    assert not [f for f in files if Path(f).name.startswith(".tmp-")]


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_the_app_serves_the_published_bytes_with_validators_and_shared_cache_headers(app, world, client, runner):
    runner.invoke(args=["publish"])
    paths = ["/", f"/incidents/{world['open']}", "/history", "/feed.atom", *(f"/api/v2/{n}" for n in V2)]
    for path in paths:
        plain = client.get(path)
        assert plain.status_code == 200, path
        assert plain.data == published(app, path), path
        etag = plain.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith('W/'), etag  # strong
        assert plain.headers["Last-Modified"]
        cache = plain.headers["Cache-Control"]
        assert cache == "public, max-age=10, stale-while-revalidate=30, stale-if-error=86400", path
        assert "Set-Cookie" not in plain.headers and "Cookie" not in plain.headers.get("Vary", "")
        cors = plain.headers.get("Access-Control-Allow-Origin")
        assert cors == ("*" if path.startswith("/api/v2/") or path == "/feed.atom" else None), path
        zipped = client.get(path, headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
        assert gzip.decompress(zipped.data) == plain.data
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
        assert client.get(path, headers={"If-None-Match": zipped.headers["ETag"]}).status_code == 304
        assert client.get(path, headers={"If-Modified-Since": plain.headers["Last-Modified"]}).status_code == 304
        assert client.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200
    assert client.head("/").data == b"" and client.head("/").headers["ETag"]


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_signed_in_admin_gets_no_cookie_on_public_pages_but_sees_a_flashed_message(app, world, runner):
    runner.invoke(args=["publish"])
    from statuspage.auth import create_user

    with app.app_context():
        create_user("ed@example.com", "correct horse battery", "editor")
        db.session.commit()
    browser = app.test_client()
    browser.post("/admin/login", data={"email": "ed@example.com", "password": "correct horse battery",
                                       "remember": "1"})
    page = browser.get("/")
    assert page.status_code == 200 and page.data == published(app, "/")
    assert "Set-Cookie" not in page.headers and "Cookie" not in page.headers.get("Vary", "")
    # While a change is still waiting to be published, the signed-in admin sees it at once
    # (privately); anonymous visitors get the published page.
    from statuspage.publish.changes import SUPPRESS_SCHEDULE

    with app.app_context():
        db.session.info[SUPPRESS_SCHEDULE] = True
        db.session.get(Component, world["components"][0]).name = "Being published"
        db.session.commit()
    own = browser.get("/")
    assert b"Being published" in own.data and own.headers["Cache-Control"] == "private, no-store"
    assert b"Being published" not in app.test_client().get("/").data
    with app.app_context():
        publish_pending()
    # A message waiting in the session (a form error redirected to the public page) still shows,
    # on a private answer no cache keeps; after that, the public page again.
    with browser.session_transaction() as sess:
        sess["_flashes"] = [("error", "That did not work.")]
    flashed = browser.get("/")
    assert "That did not work." in flashed.get_data(as_text=True)
    assert flashed.headers["Cache-Control"] == "private, no-store"
    assert browser.get("/").data == published(app, "/")


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_missing_file_is_rendered_live_with_the_same_renderer(app, world, client, runner):
    runner.invoke(args=["publish"])
    path = f"/incidents/{world['open']}"
    expected = published(app, path)
    for rel in (file_for(path), file_for(path) + ".gz", "index.html", "index.html.gz"):
        (root(app) / rel).unlink()
    live = client.get(path)
    assert live.status_code == 200 and live.data == expected
    assert client.get("/").status_code == 200
    assert live.headers["ETag"] == f'"{__import__("hashlib").sha256(expected).hexdigest()[:32]}"'


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_unknown_paths_get_the_normal_404(app, world, client, runner):
    runner.invoke(args=["publish"])
    assert client.get("/incidents/999999").status_code == 404
    assert client.get("/no-such-page").status_code == 404
    missing = client.get("/api/v2/nothing.json")
    assert missing.status_code == 404 and missing.get_json() == {"error": "not found"}
    assert missing.headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/history/99").status_code == 404 and client.get("/history/1").status_code == 404
    assert not (root(app) / "incidents" / "999999").exists()


def test_every_kind_of_change_rebuilds_what_it_affects(app, world, api, client, runner):
    runner.invoke(args=["publish"])
    ids = world["components"]

    def summary():
        return json.loads(published(app, "/api/v2/summary.json"))

    api.patch(f"/api/v1/components/{ids[1]}", json={"status": "partial_outage"})
    assert {c["id"]: c["status"] for c in summary()["components"]}[str(ids[1])] == "partial_outage"
    api.patch(f"/api/v1/components/{ids[2]}", json={"name": "Renamed service"})
    assert b"Renamed service" in published(app, "/")
    assert b"Renamed service" in published(app, f"/incidents/{world['resolved'][0]}")  # the subscribe control
    api.post("/api/v1/component-groups", json={"name": "Edge"})
    api.patch(f"/api/v1/component-groups/{world['groups'][0]}", json={"name": "Core platform"})
    assert "Core platform" in [c["name"] for c in summary()["components"]]
    api.post(f"/api/v1/incidents/{world['open']}/updates", json={"status": "identified", "body": "Found it"})
    assert b"Found it" in published(app, f"/incidents/{world['open']}")
    assert b"Found it" in published(app, "/") and b"Found it" in published(app, "/feed.atom")
    new = api.post("/api/v1/incidents", json={"name": "Brand new trouble", "body": "Hm"}).get_json()["id"]
    assert b"Brand new trouble" in published(app, f"/incidents/{new}")
    assert b"Brand new trouble" in published(app, "/history")
    assert json.loads(published(app, "/api/v2/incidents/unresolved.json"))["incidents"][0]["name"] == \
        "Brand new trouble"
    api.patch(f"/api/v1/maintenances/{world['maintenance']}", json={"status": "in_progress"})
    active = json.loads(published(app, "/api/v2/scheduled-maintenances/active.json"))
    assert [m["id"] for m in active["scheduled_maintenances"]] == [str(world["maintenance"])]
    with_keys(app)  # VAPID keys appear: the subscribe control turns on
    assert b'data-enabled="true"' in published(app, "/")
    assert api.put("/api/v1/push/settings", json={"enabled": False}).status_code == 200
    assert b'data-enabled="false"' in published(app, "/")
    assert b'data-enabled="false"' in published(app, f"/incidents/{world['open']}")
    api.delete(f"/api/v1/components/{ids[3]}")
    assert str(ids[3]) not in [c["id"] for c in summary()["components"]]


def test_changes_made_outside_the_service_functions_are_published_too(app, world):
    """The session sees every change: plain ORM attribute edits and bulk UPDATE statements."""
    with app.app_context():
        component = db.session.get(Component, world["components"][5])
        component.status = "degraded_performance"
        db.session.commit()
        db.session.execute(update(Incident).where(Incident.id == world["resolved"][1])
                           .values(name="Renamed by a bulk update"))
        db.session.commit()
    statuses = {c["id"]: c["status"] for c in json.loads(published(app, "/api/v2/components.json"))["components"]}
    assert statuses[str(world["components"][5])] == "degraded_performance"
    assert b"Renamed by a bulk update" in published(app, f"/incidents/{world['resolved'][1]}")


def test_a_change_to_one_incident_rewrites_only_its_page_and_the_lists(app, world, api, runner):
    extra = [api.post("/api/v1/incidents", json={"name": f"History {n}", "body": "x"}).get_json()["id"]
             for n in range(25)]
    runner.invoke(args=["publish"])
    before = mtimes(app)
    # A new status (history rows show an incident's status and its first update, not its latest).
    api.post(f"/api/v1/incidents/{world['open']}/updates", json={"status": "identified", "body": "Still looking"})
    after = mtimes(app)
    changed = {f for f in after if after[f] != before.get(f)}
    incident_pages = {f for f in changed if f.startswith("incidents/")}
    assert incident_pages == {f"incidents/{world['open']}/index.html", f"incidents/{world['open']}/index.html.gz"}
    assert "index.html" in changed and "feed.atom" in changed
    # The open incident is the oldest: on history page 2, which is rewritten; page 1 is rendered
    # but comes out identical, so its file (date, validators) is left alone.
    assert "history/2/index.html" in changed and "history/index.html" not in changed
    assert all(f"incidents/{i}/index.html" not in changed for i in extra)


def test_files_of_deleted_things_disappear(app, world, api, runner):
    runner.invoke(args=["publish"])
    victim = world["resolved"][2]
    assert (root(app) / f"incidents/{victim}/index.html").exists()
    with app.app_context():
        db.session.delete(db.session.get(Incident, victim))
        db.session.commit()
    assert not (root(app) / f"incidents/{victim}").exists()
    assert b"Old outage 2" not in published(app, "/history")
    # History pages that no longer exist are removed when the list shrinks.
    many = [api.post("/api/v1/incidents", json={"name": f"Bulk {n}", "body": "x"}).get_json()["id"]
            for n in range(20)]
    assert (root(app) / "history/2/index.html").exists()
    with app.app_context():
        for iid in many:
            db.session.delete(db.session.get(Incident, iid))
        db.session.commit()
    assert not (root(app) / "history/2").exists()


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_history_query_pages_answer_with_the_published_page(app, world, api, client):
    for n in range(20):
        api.post("/api/v1/incidents", json={"name": f"Past {n}", "body": "x"})
    second = client.get("/history/2")
    assert second.status_code == 200 and second.data == published(app, "/history/2")
    assert client.get("/history?page=2").data == second.data
    assert b'href="/history/2" rel="next"' in client.get("/history").data  # links to the published pages
    assert b'href="/history" rel="prev"' in second.data
    assert client.get("/history?page=²").data == published(app, "/history")


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_failed_render_keeps_the_previous_page_retries_and_shows_on_the_dashboard(app, world, api):
    path = f"/incidents/{world['open']}"
    good = published(app, path)
    original = app.jinja_loader
    app.jinja_env.loader = ChoiceLoader([DictLoader({"incident.html": "{{ incident.no_such_method() }}"}), original])
    app.jinja_env.cache.clear()
    try:
        posted = api.post(f"/api/v1/incidents/{world['open']}/updates", json={"body": "Broken render"})
        assert posted.status_code == 201  # the change itself is saved; only its page is late
    finally:
        app.jinja_env.loader = original
        app.jinja_env.cache.clear()
    assert published(app, path) == good  # the previous page stays
    assert b"Broken render" in published(app, "/")  # the other pages went out
    with app.app_context():
        row = db.session.execute(select(PublishRequest).where(PublishRequest.target == path)).scalar_one()
        assert row.attempts == 1 and row.not_before is not None
        status = db.session.get(PublishStatus, 1)
        assert status.failing_since is not None and "no_such_method" in status.last_error
    admin = app.test_client()
    from statuspage.auth import create_user

    with app.app_context():
        create_user("boss@example.com", "correct horse battery", "admin")
        db.session.commit()
    admin.post("/admin/login", data={"email": "boss@example.com", "password": "correct horse battery"})
    dashboard = admin.get("/admin/").get_data(as_text=True)
    assert "Public page not updated" in dashboard and "no_such_method" in dashboard
    # The retry (the sweeper, once the backoff is over) publishes it and clears the error.
    with app.app_context():
        db.session.execute(update(PublishRequest).values(not_before=None))
        db.session.commit()
        publish_pending()
        assert db.session.get(PublishStatus, 1).failing_since is None
    assert b"Broken render" in published(app, path)
    assert "Public page not updated" not in admin.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("app", ["postgresql"], indirect=True)  # SQLite's own file would hit the limit too
def test_a_full_disk_never_truncates_a_page(app, world, api, tmp_path):
    """The real publisher in a process whose file-size limit (RLIMIT_FSIZE) is smaller than the
    pages: every write fails part-way, as on a full disk, and no published file changes."""
    from statuspage.publish.changes import SUPPRESS_SCHEDULE

    before = {rel: (root(app) / rel).read_bytes() for rel in mtimes(app)}
    with app.app_context():
        db.session.info[SUPPRESS_SCHEDULE] = True  # leave the publishing to the limited process
        db.session.get(Component, world["components"][0]).name = "Renamed before the disk filled up"
        db.session.commit()
    env = {**os.environ, "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "SECRET_KEY": TEST_SECRET,
           "INSTANCE_PATH": os.environ["INSTANCE_PATH"], "SITE_URL": app.config["SITE_URL"],
           "SITE_NAME": app.config["SITE_NAME"], "REDIS_URL": "", "FLASK_DEBUG": "0"}

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG from write() instead of a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    script = "from statuspage import create_app\nfrom statuspage.publish.publisher import publish_pending\n" \
             "app = create_app()\nwith app.app_context():\n    publish_pending()\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, preexec_fn=small_files,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "File too large" in result.stderr, result.stderr[-2000:]
    after = {rel: (root(app) / rel).read_bytes() for rel in mtimes(app)}
    assert not [rel for rel in after if Path(rel).name.startswith(".tmp-")]
    for rel, body in after.items():
        if body != before.get(rel):
            assert len(body) <= 2048, f"{rel} changed although it could not be written whole"
        if rel.endswith(".gz"):  # every page and its .gz still belong together
            assert gzip.decompress(body) == after[rel[:-3]], rel
    assert after["index.html"] == before["index.html"]  # too big to write: the old page stays
    assert b"Renamed before the disk filled up" not in after["index.html"]
    with app.app_context():
        assert db.session.execute(select(func.count(PublishRequest.id))).scalar_one() > 0  # kept for a retry
        assert "File too large" in db.session.get(PublishStatus, 1).last_error
        db.session.execute(update(PublishRequest).values(not_before=None))
        db.session.commit()
        publish_pending()  # space again: everything goes out
        assert db.session.execute(select(func.count(PublishRequest.id))).scalar_one() == 0


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_one_publisher_at_a_time_and_nothing_is_stranded(app, world, api):
    """A second publisher finds the lock taken and leaves; the holder picks up what was committed
    meanwhile before it lets go."""
    store = app.extensions["statuspage_snapshot"]
    from statuspage.publish.publisher import PublishLock

    lock = PublishLock(store.root)
    assert lock.acquire()
    try:
        with app.app_context():
            db.session.add(PublishRequest(target=f"incident:{world['open']}"))
            db.session.get(Incident, world["open"]).name = "Renamed while locked"
            db.session.commit()  # eager: the job runs, finds the lock taken, leaves the rows
            assert db.session.execute(select(func.count(PublishRequest.id))).scalar_one() > 0
    finally:
        lock.release()
    results = []
    threads = [threading.Thread(target=lambda: results.append(_run_publisher(app))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b"Renamed while locked" in published(app, f"/incidents/{world['open']}")
    with app.app_context():
        assert db.session.execute(select(func.count(PublishRequest.id))).scalar_one() == 0


def _run_publisher(app):
    with app.app_context():
        return Publisher(app).run()


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_every_registered_public_path_has_a_file_after_a_full_publish(app, world, runner):
    runner.invoke(args=["publish"])
    with app.app_context():
        for page in REGISTRY.pages:
            for args in page.all_args():
                assert (root(app) / file_for(page.path(args))).exists(), page.path(args)


def test_the_sweeper_publishes_what_a_lost_job_left_and_rebuilds_a_missing_snapshot(app, world):
    from statuspage.sweeper import sweep

    with app.app_context():
        app.config["PUBLISH_SWEEP_AFTER"] = 0
        db.session.add(PublishRequest(target="components"))
        db.session.get(Component, world["components"][0]).name = "Edited, job lost"
        from statuspage.publish.changes import SUPPRESS_SCHEDULE

        db.session.info[SUPPRESS_SCHEDULE] = True  # as if the job never ran
        db.session.commit()
        db.session.info.pop(SUPPRESS_SCHEDULE)
        assert b"Edited, job lost" not in published(app, "/")
        sweep()
    assert b"Edited, job lost" in published(app, "/")
    # A snapshot that is not there at all (first start, a wiped directory) is rebuilt whole.
    import shutil

    shutil.rmtree(root(app))
    with app.app_context():
        assert sweep()["published"] > 0
    assert (root(app) / "index.html").exists() and (root(app) / ".build-id").exists()



@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_pages_that_change_with_time_alone_are_re_rendered_by_the_sweeper(app, world, monkeypatch):
    from datetime import timedelta

    from statuspage.sweeper import sweep

    feed = REGISTRY.by_endpoint("public.feed")
    monkeypatch.setattr(feed, "refresh_every", timedelta(hours=1))
    with app.app_context():
        app.config["PUBLISH_SWEEP_AFTER"] = 0
        sweep()
        (root(app) / "feed.atom").unlink()
        sweep()  # within the hour: not rendered again
        assert not (root(app) / "feed.atom").exists()
        app.extensions["statuspage_refreshed"]["/feed.atom"] -= 3601  # an hour later
        sweep()
        assert (root(app) / "feed.atom").exists()


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_an_unwritable_snapshot_directory_is_reported_not_a_crash(app, world, client):
    from statuspage.publish.publisher import PublishError

    blocker = root(app).parent / "not-a-directory"
    blocker.write_text("a file where the snapshot directory should be")
    store = app.extensions["statuspage_snapshot"]
    original = store.root
    store.root = blocker / "public"
    try:
        with app.app_context(), pytest.raises(PublishError, match="snapshot directory"):
            publish_pending()
        with app.app_context():
            assert "snapshot directory" in db.session.get(PublishStatus, 1).last_error
        assert client.get("/").status_code == 200  # rendered live meanwhile
    finally:
        store.root = original
