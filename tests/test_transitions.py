"""One transition, one event, whoever races it -- with real concurrency on SQLite and PostgreSQL:
two admins resolving one incident at once through gunicorn's worker processes, the sweeper and a
PATCH starting the same maintenance, two real RQ worker processes running the due-maintenance
job (queued once per edit) at the same time. And `notify: false` at creation covers the automatic
transitions it implies."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections import Counter
from datetime import timedelta

import pytest
import requests
from redis import Redis
from sqlalchemy import select, update

from statuspage.extensions import db
from statuspage.jobs import enqueue
from statuspage.models import Event, Incident
from statuspage.timeutil import utcnow
from tests.conftest import TEST_SECRET, create_admin_token, make_app
from tests.livehelpers import ROOT, Gunicorn
from tests.push.helpers import PUSH_REDIS_URL

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, pg_database) -> str:
    return f"sqlite:///{tmp_path / 'race.db'}" if request.param == "sqlite" else pg_database


def _events(app, incident_id: int | None = None) -> Counter:
    with app.app_context():
        query = select(Event.incident_id, Event.type)
        if incident_id is not None:
            query = query.where(Event.incident_id == incident_id)
        rows = db.session.execute(query).all()
        db.session.remove()
    return Counter((i, t) for i, t in rows)


def _race(*calls) -> list:
    """Run the calls at the same moment, one thread each; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i: int, call) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:  # reported by the assertion that reads `results`
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_two_admins_resolving_one_incident_at_once_record_one_resolved_event(database, tmp_path):
    app = make_app(database, tmp_path)
    headers = {"Authorization": f"Bearer {create_admin_token(app)}"}
    trials = 10
    with Gunicorn(database, tmp_path, workers=4) as server:
        http = requests.Session()
        for trial in range(trials):
            created = http.post(server.url + "/api/v1/incidents", json={"name": f"Outage {trial}"},
                                headers=headers, timeout=30)
            assert created.status_code == 201, created.text
            incident_id = created.json()["id"]
            path = f"{server.url}/api/v1/incidents/{incident_id}/updates"

            def resolve(who: str, path=path) -> int:
                body = {"status": "resolved", "body": f"Fixed ({who})."}
                return requests.post(path, json=body, headers=headers, timeout=60).status_code

            assert _race(lambda: resolve("alice"), lambda: resolve("bob")) == [201, 201]
            events = _events(app, incident_id)
            # The first to commit resolves it; the second, serialised behind it, sees a resolved
            # incident and posts an ordinary update -- as if they had clicked one after the other.
            assert events[(incident_id, "incident.resolved")] == 1, events
            assert events[(incident_id, "incident.updated")] == 1, events
        assert not server.errors()


def _due_maintenances(app, headers, count: int, *, end_in: timedelta) -> list[int]:
    """`count` maintenances scheduled through the API, then made due (their start moved into the
    past, their end `end_in` from now)."""
    later = utcnow() + timedelta(days=1)
    client = app.test_client()
    ids = []
    for n in range(count):
        body = {"name": f"Upgrade {n}", "scheduled_for": later.isoformat() + "Z",
                "scheduled_until": (later + timedelta(hours=1)).isoformat() + "Z"}
        response = client.post("/api/v1/maintenances", json=body, headers=headers)
        assert response.status_code == 201, response.get_json()
        ids.append(response.get_json()["id"])
    with app.app_context():  # time passes: every one of them is due now
        db.session.execute(update(Incident).where(Incident.id.in_(ids))
                           .values(scheduled_for=utcnow() - timedelta(seconds=5),
                                   scheduled_until=utcnow() + end_in))
        db.session.commit()
        db.session.remove()
    return ids


def test_the_sweeper_and_a_patch_starting_a_maintenance_at_once_record_one_started_event(database, tmp_path):
    from statuspage.incidents import run_due_maintenances

    app = make_app(database, tmp_path)
    headers = {"Authorization": f"Bearer {create_admin_token(app)}"}
    ids = _due_maintenances(app, headers, 12, end_in=timedelta(hours=1))
    with Gunicorn(database, tmp_path, workers=3) as server:

        def patch_all() -> list[int]:
            return [requests.patch(f"{server.url}/api/v1/maintenances/{mid}", json={"status": "in_progress"},
                                   headers=headers, timeout=60).status_code for mid in ids]

        def sweep() -> int:
            with app.app_context():
                try:
                    return run_due_maintenances()
                finally:
                    db.session.remove()

        patched, swept = _race(patch_all, sweep)
        assert patched == [200] * len(ids), patched
        assert isinstance(swept, int), swept
        assert not server.errors()
    events = _events(app)
    for mid in ids:
        assert events[(mid, "maintenance.started")] == 1, (mid, events)
    with app.app_context():
        assert set(db.session.execute(select(Incident.status).where(Incident.id.in_(ids))).scalars()) == {"in_progress"}


def _worker_env(database: str, redis_url: str, queue: str, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH_", "RATELIMIT_", "FLASK_"))}
    env.update({"DATABASE_URL": database, "REDIS_URL": redis_url, "RQ_QUEUE": queue, "SECRET_KEY": TEST_SECRET,
                "INSTANCE_PATH": str(tmp_path / "worker-instance"), "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": "0",
                "SWEEP_INTERVAL": "3600", "PYTHONUNBUFFERED": "1"})
    return env


def run_racing_workers(database: str, queue: str, tmp_path, count: int = 2) -> None:
    """`count` real `flask worker --burst` processes drain `queue` at the same time; none may fail."""
    env = _worker_env(database, PUSH_REDIS_URL, queue, tmp_path)
    log = tmp_path / "workers.log"
    workers = [subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--burst"], cwd=ROOT,
                                env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT) for _ in range(count)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def drop_queue(queue: str) -> None:
    conn = Redis.from_url(PUSH_REDIS_URL)
    keys = list(conn.scan_iter(match=f"*{queue}*"))
    if keys:
        conn.delete(*keys)


def test_two_rq_workers_running_the_due_maintenance_job_at_once_move_each_maintenance_once(database, tmp_path):
    """One run_due_maintenances is queued per edit; two `flask worker` processes take them (and each
    sweeps once as it starts) at the same time. With_for_update(skip_locked) is a no-op on SQLite:
    every maintenance used to start twice there."""
    queue = f"race-test-{secrets.token_hex(4)}"
    app = make_app(database, tmp_path, REDIS_URL=PUSH_REDIS_URL, JOBS_EAGER=False, RQ_QUEUE=queue)
    headers = {"Authorization": f"Bearer {create_admin_token(app)}"}
    try:
        starting = _due_maintenances(app, headers, 10, end_in=timedelta(hours=1))
        ending = _due_maintenances(app, headers, 10, end_in=-timedelta(seconds=1))
        with app.app_context():
            for _ in range(3 * 20):  # three edits of each maintenance queued the job 60 times
                enqueue("statuspage.incidents.run_due_maintenances")
        run_racing_workers(database, queue, tmp_path)
    finally:
        drop_queue(queue)
    events = _events(app)
    for mid in starting:
        assert (events[(mid, "maintenance.started")], events[(mid, "maintenance.completed")]) == (1, 0), mid
    for mid in ending:
        assert (events[(mid, "maintenance.started")], events[(mid, "maintenance.completed")]) == (1, 1), mid
    with app.app_context():
        statuses = dict(db.session.execute(select(Incident.id, Incident.status)
                                           .where(Incident.kind == "maintenance")).all())
    assert {statuses[m] for m in starting} == {"in_progress"} and {statuses[m] for m in ending} == {"completed"}


@pytest.mark.parametrize("notify", [False, True])
def test_notify_chosen_at_creation_covers_the_automatic_start_and_end(app, api, notify):
    from statuspage.incidents import run_due_maintenances

    component = api.post("/api/v1/components", json={"name": "DB"}).get_json()["id"]
    later = utcnow() + timedelta(days=1)
    created = api.post("/api/v1/maintenances", json={
        "name": "Quiet upgrade", "scheduled_for": later.isoformat() + "Z",
        "scheduled_until": (later + timedelta(hours=1)).isoformat() + "Z", "component_ids": [component],
        "notify": notify})
    assert created.status_code == 201
    with app.app_context():
        db.session.execute(update(Incident).values(scheduled_for=utcnow() - timedelta(seconds=2),
                                                   scheduled_until=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert run_due_maintenances() == 1
        rows = db.session.execute(select(Event.type, Event.notify).order_by(Event.id)).all()
    assert [tuple(r) for r in rows] == [
        ("maintenance.scheduled", notify), ("maintenance.started", notify), ("maintenance.completed", notify)]
    with app.app_context():
        assert db.session.get(Incident, created.get_json()["id"]).notify is notify


def test_patching_notify_changes_what_the_automatic_transitions_do(app, api):
    from statuspage.incidents import run_due_maintenances

    later = utcnow() + timedelta(days=1)
    mid = api.post("/api/v1/maintenances", json={
        "name": "Upgrade", "scheduled_for": later.isoformat() + "Z",
        "scheduled_until": (later + timedelta(hours=1)).isoformat() + "Z"}).get_json()["id"]
    assert api.patch(f"/api/v1/maintenances/{mid}", json={"notify": False}).status_code == 200
    with app.app_context():
        db.session.execute(update(Incident).values(scheduled_for=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        run_due_maintenances()
        started = db.session.execute(select(Event.notify).where(Event.type == "maintenance.started")).scalar_one()
    assert started is False


def test_run_due_maintenances_twice_in_a_row_moves_nothing_the_second_time(app, api):
    from statuspage.incidents import run_due_maintenances

    later = utcnow() + timedelta(days=1)
    api.post("/api/v1/maintenances", json={"name": "Upgrade", "scheduled_for": later.isoformat() + "Z",
                                           "scheduled_until": (later + timedelta(hours=1)).isoformat() + "Z"})
    with app.app_context():
        db.session.execute(update(Incident).values(scheduled_for=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        assert run_due_maintenances() == 1
        assert run_due_maintenances() == 0
        assert db.session.execute(select(Event.type).where(Event.type == "maintenance.started")).scalars().all() == [
            "maintenance.started"]
