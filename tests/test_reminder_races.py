"""Maintenance reminders under real concurrency, on SQLite and PostgreSQL: two `flask worker`
processes run the reminder job (queued once per maintenance and lead time) and sweep at the same
time; each maintenance records exactly one reminder."""
from __future__ import annotations

import secrets
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from statuspage.extensions import db
from statuspage.jobs import JobName, enqueue
from statuspage.models import Event, Incident, MaintenanceReminder
from statuspage.timeutil import utcnow
from tests.conftest import create_admin_token, make_app
from tests.push.helpers import PUSH_REDIS_URL
from tests.test_transitions import drop_queue, run_racing_workers

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path, pg_database) -> str:
    return f"sqlite:///{tmp_path / 'race.db'}" if request.param == "sqlite" else pg_database


def test_two_rq_workers_running_the_reminder_job_at_once_record_one_reminder_each(database, tmp_path):
    queue = f"remind-race-{secrets.token_hex(4)}"
    app = make_app(database, tmp_path, REDIS_URL=PUSH_REDIS_URL, JOBS_EAGER=False, RQ_QUEUE=queue)
    headers = {"Authorization": f"Bearer {create_admin_token(app)}"}
    client = app.test_client()
    later = utcnow() + timedelta(days=1)
    ids = []
    try:
        for n in range(10):
            r = client.post("/api/v1/maintenances", headers=headers, json={
                "name": f"Upgrade {n}", "scheduled_for": later.isoformat() + "Z",
                "scheduled_until": (later + timedelta(hours=1)).isoformat() + "Z"})
            assert r.status_code == 201, r.get_json()
            ids.append(r.get_json()["id"])
        with app.app_context():  # time passes: each is 30 minutes away, inside the 60-minute lead
            db.session.execute(update(Incident).where(Incident.id.in_(ids)).values(
                scheduled_for=utcnow() + timedelta(minutes=30), scheduled_until=utcnow() + timedelta(hours=2)))
            db.session.commit()
            for _ in range(40):
                enqueue(JobName.SEND_DUE_REMINDERS)
            db.session.remove()
        run_racing_workers(database, queue, tmp_path)
    finally:
        drop_queue(queue)
    with app.app_context():
        events = Counter(db.session.execute(
            select(Event.incident_id).where(Event.type == "maintenance.reminder")).scalars())
        rows = Counter(db.session.execute(select(MaintenanceReminder.incident_id)).scalars())
        db.session.remove()
    assert events == Counter(ids) and rows == Counter(ids)
