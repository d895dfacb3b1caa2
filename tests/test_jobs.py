"""Jobs run the same functions on RQ (real Redis, burst worker) and on the in-process thread."""
from __future__ import annotations

import time
from datetime import timedelta

from rq import Queue
from sqlalchemy import select

from statuspage.extensions import db
from statuspage.jobs import JobName, LocalRunner, enqueue, redis_connection, resolve
from statuspage.models import Event, Incident
from statuspage.timeutil import utcnow
from tests.conftest import create_admin_token


def test_rq_worker_runs_fan_out_and_due_maintenance(app, redis_url):
    app.config.update(JOBS_EAGER=False, REDIS_URL=redis_url)
    token = create_admin_token(app)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    start = utcnow() + timedelta(hours=2)
    r = client.post("/api/v1/maintenances", headers=headers, json={
        "name": "Kernel upgrade", "scheduled_for": start.isoformat() + "Z",
        "scheduled_until": (start + timedelta(hours=1)).isoformat() + "Z"})
    assert r.status_code == 201
    maintenance_id = r.json["id"]
    with app.app_context():
        queue = Queue(app.config["RQ_QUEUE"], connection=redis_connection(app))
        assert len(queue) == 1  # fan_out of maintenance.scheduled
        # start and end checks and the reminder an hour before the start, scheduled by RQ
        assert len(queue.scheduled_job_registry) == 3
        m = db.session.get(Incident, maintenance_id)
        m.scheduled_for = utcnow() - timedelta(seconds=1)
        db.session.commit()
        enqueue(JobName.RUN_DUE_MAINTENANCES)
    result = app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert db.session.get(Incident, maintenance_id).status == "in_progress"
        states = dict(db.session.execute(select(Event.type, Event.state)).all())
    # No VAPID keys in this test: events are fanned out and skipped with a reason, never lost.
    assert states == {"maintenance.scheduled": "skipped", "maintenance.started": "skipped"}


def test_local_runner_runs_jobs_in_the_background_with_delays(sqlite_app):
    runner = LocalRunner(sqlite_app)
    with sqlite_app.app_context():
        incident = Incident(kind="maintenance", name="m", status="scheduled", impact="maintenance",
                            scheduled_for=utcnow() - timedelta(seconds=1),
                            scheduled_until=utcnow() + timedelta(hours=1))
        db.session.add(incident)
        db.session.commit()
        incident_id = incident.id
    runner.submit(JobName.RUN_DUE_MAINTENANCES, (), delay=0.2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sqlite_app.app_context():
            if db.session.get(Incident, incident_id).status == "in_progress":
                break
        time.sleep(0.05)
    with sqlite_app.app_context():
        assert db.session.get(Incident, incident_id).status == "in_progress"


def test_worker_command_refuses_without_redis(sqlite_app):
    result = sqlite_app.test_cli_runner().invoke(args=["worker", "--burst"])
    assert result.exit_code != 0 and "REDIS_URL is not set" in result.output


def test_every_job_name_resolves_to_the_function_it_names():
    for name in JobName:
        job = resolve(name)
        assert callable(job) and f"{job.__module__}.{job.__name__}" == name
