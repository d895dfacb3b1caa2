"""Maintenance reminders and maintenance start/end notifications, on a fake clock: reminders go
out at each lead time before a scheduled start, once; a rescheduled maintenance gets new ones and
the old time none; a cancelled one none; a sweeper that was down sends only the closest reminder
that came due, late, once; started/completed go out when the maintenance really moves."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from statuspage import events as events_module
from statuspage.extensions import db
from statuspage.jobs import EnqueueError, run_delayed_jobs
from statuspage.models import Incident
from statuspage.sweeper import sweep
from tests import clock as fake
from tests.push import helpers as ph


@pytest.fixture
def clock(monkeypatch) -> fake.FakeClock:
    return fake.install(monkeypatch)


def _z(when: datetime) -> str:
    return when.isoformat() + "Z"


def _maintenance(api, clock, *, starts_in: timedelta, lasts: timedelta = timedelta(hours=1), **extra) -> int:
    start = clock.now + starts_in
    r = api.post("/api/v1/maintenances", {"name": "Database upgrade", "scheduled_for": _z(start),
                                          "scheduled_until": _z(start + lasts), "body": "Upgrading to v16.",
                                          **extra})
    assert r.status_code == 201, r.json
    return r.json["id"]


def _sweep(app) -> dict[str, int]:
    """One sweep, as the periodic sweeper runs it (a fresh app context: a restarted process)."""
    with app.app_context():
        return sweep()


def _setup(app, api, sim, *, minutes: list[int] | None = None) -> tuple:
    public_key = ph.generate_keys(app)
    sub, _ = ph.subscribe(api.client, sim, public_key)
    if minutes is not None:
        r = api.put("/api/v1/push/settings", {"maintenance_reminder_minutes": minutes})
        assert r.status_code == 200, r.json
    return sub


def _titles(sim, sub) -> list[str]:
    return [m.payload["title"] for m in sim.received(sub.token)]


def test_reminder_trigger_is_on_by_default_with_a_60_minute_lead(eager_app, eager_api):
    triggers = {t["event"]: t for t in eager_api.get("/api/v1/triggers").json}
    assert triggers["maintenance.reminder"]["enabled"] is True
    assert "{starts_in}" in triggers["maintenance.reminder"]["title_template"]
    assert eager_api.get("/api/v1/push/settings").json["maintenance_reminder_minutes"] == [60]


@pytest.mark.parametrize("bad", [[0], [-5], ["soon"], "60", [60] * 6 + [1, 2, 3, 4, 5], [10081], {"a": 1}, [True]])
def test_bad_reminder_minutes_are_a_400_and_change_nothing(eager_api, bad):
    r = eager_api.put("/api/v1/push/settings", {"maintenance_reminder_minutes": bad})
    if bad == "60":  # the admin form's text: accepted, stored as a list
        assert r.status_code == 200 and r.json["maintenance_reminder_minutes"] == [60]
        return
    assert r.status_code == 400 and "maintenance_reminder_minutes" in r.json["error"]
    assert eager_api.get("/api/v1/push/settings").json["maintenance_reminder_minutes"] == [60]


def test_reminders_go_out_at_each_lead_time_once(eager_app, sim, eager_api, clock):
    sub = _setup(eager_app, eager_api, sim, minutes=[60, 1440, 60])
    assert eager_api.get("/api/v1/push/settings").json["maintenance_reminder_minutes"] == [1440, 60]
    mid = _maintenance(eager_api, clock, starts_in=timedelta(days=2))
    _sweep(eager_app)
    assert sim.received(sub.token) == []

    clock.advance(hours=23, minutes=59)  # a minute before the one-day reminder
    _sweep(eager_app)
    assert sim.received(sub.token) == []
    clock.advance(minutes=1)
    with eager_app.app_context():  # the job queued for this moment runs (and the one for later finds nothing)
        run_delayed_jobs(eager_app)
    assert _titles(sim, sub) == ["Maintenance in 1 day: Database upgrade"]
    [message] = sim.received(sub.token)
    assert message.payload["event"] == "maintenance.reminder"
    assert message.payload["tag"] == f"maintenance-{mid}"
    assert message.payload["body"].startswith("Starts ") and message.payload["body"].endswith("Upgrading to v16.")
    _sweep(eager_app)
    _sweep(eager_app)
    assert len(sim.received(sub.token)) == 1  # not twice

    clock.advance(hours=23)
    _sweep(eager_app)
    assert _titles(sim, sub)[1:] == ["Maintenance in 1 hour: Database upgrade"]
    clock.advance(minutes=30)
    _sweep(eager_app)
    assert len(sim.received(sub.token)) == 2
    reminders = ph.event_rows(eager_app, "maintenance.reminder")
    assert [(e.state, e.sent_count) for e in reminders] == [("done", 1), ("done", 1)]


def test_rescheduled_maintenance_gets_new_reminders_and_the_old_time_none(eager_app, sim, eager_api, clock):
    sub = _setup(eager_app, eager_api, sim)
    mid = _maintenance(eager_api, clock, starts_in=timedelta(hours=3))
    clock.advance(hours=1, minutes=30)
    r = eager_api.patch(f"/api/v1/maintenances/{mid}", {"scheduled_for": _z(clock.now + timedelta(hours=5)),
                                                        "scheduled_until": _z(clock.now + timedelta(hours=6))})
    assert r.status_code == 200, r.json
    clock.advance(hours=1, minutes=10)  # the old time's reminder would have been due by now
    _sweep(eager_app)
    assert sim.received(sub.token) == []
    clock.advance(hours=2, minutes=50)  # one hour before the new start
    _sweep(eager_app)
    assert _titles(sim, sub) == ["Maintenance in 1 hour: Database upgrade"]

    # Moved earlier, to 30 minutes from now: its 60-minute lead is already past when it is
    # rescheduled, so nothing goes out the moment it is saved, and nothing later either.
    r = eager_api.patch(f"/api/v1/maintenances/{mid}", {"scheduled_for": _z(clock.now + timedelta(minutes=30))})
    assert r.status_code == 200, r.json
    _sweep(eager_app)
    clock.advance(minutes=20)
    _sweep(eager_app)
    assert len(sim.received(sub.token)) == 1


def test_maintenance_scheduled_at_short_notice_gets_no_instant_reminder(eager_app, sim, eager_api, clock):
    sub = _setup(eager_app, eager_api, sim, minutes=[120, 15])
    _maintenance(eager_api, clock, starts_in=timedelta(minutes=60))  # the 120-minute lead is past
    _sweep(eager_app)
    assert sim.received(sub.token) == []
    clock.advance(minutes=45)
    _sweep(eager_app)
    assert _titles(sim, sub) == ["Maintenance in 15 minutes: Database upgrade"]


def test_lead_time_added_after_its_moment_passed_is_not_sent_late(eager_app, sim, eager_api, clock):
    """Raising the lead times while a maintenance is closer than the new lead: that reminder's
    moment is already past, so it is never sent (not "in 35 minutes" at once); a lead added whose
    moment is still ahead goes out at its time; the old ones as before."""
    sub = _setup(eager_app, eager_api, sim, minutes=[15])
    _maintenance(eager_api, clock, starts_in=timedelta(minutes=45))
    clock.advance(minutes=10)
    r = eager_api.put("/api/v1/push/settings", {"maintenance_reminder_minutes": [60, 30, 15]})
    assert r.status_code == 200, r.json
    with eager_app.app_context():
        run_delayed_jobs(eager_app)
    _sweep(eager_app)
    assert sim.received(sub.token) == []
    clock.advance(minutes=5)  # the added 30-minute lead
    with eager_app.app_context():
        run_delayed_jobs(eager_app)
    _sweep(eager_app)
    assert _titles(sim, sub) == ["Maintenance in 30 minutes: Database upgrade"]
    clock.advance(minutes=15)
    _sweep(eager_app)
    assert _titles(sim, sub)[1:] == ["Maintenance in 15 minutes: Database upgrade"]
    _sweep(eager_app)
    assert len(sim.received(sub.token)) == 2


def test_cancelled_maintenance_sends_no_reminder(eager_app, sim, eager_api, clock):
    sub = _setup(eager_app, eager_api, sim)
    completed = _maintenance(eager_api, clock, starts_in=timedelta(hours=2))
    deleted = _maintenance(eager_api, clock, starts_in=timedelta(hours=2))
    no_notify = _maintenance(eager_api, clock, starts_in=timedelta(hours=2), notify=False)
    clock.advance(minutes=30)
    r = eager_api.post(f"/api/v1/maintenances/{completed}/updates", {"status": "completed", "body": "Called off."})
    assert r.status_code == 201, r.json
    with eager_app.app_context():
        db.session.execute(delete(Incident).where(Incident.id == deleted))
        db.session.commit()
    clock.advance(minutes=40)
    _sweep(eager_app)
    assert sim.received(sub.token) == []
    [reminder] = ph.event_rows(eager_app, "maintenance.reminder")  # the one that asked for silence
    assert (reminder.incident_id, reminder.state, reminder.notify) == (no_notify, "skipped", False)


def test_sweeper_restart_sends_the_closest_due_reminder_late_once_for_the_current_time(
        eager_app, sim, eager_api, clock):
    sub = _setup(eager_app, eager_api, sim, minutes=[180, 120, 30])
    mid = _maintenance(eager_api, clock, starts_in=timedelta(hours=4))
    _sweep(eager_app)
    eager_app.extensions["statuspage_delayed"] = []  # the process stops: its queued jobs are gone
    clock.advance(hours=1, minutes=30)  # the 180-minute reminder comes due: nobody is running
    r = eager_api.patch(f"/api/v1/maintenances/{mid}", {"scheduled_for": _z(clock.now + timedelta(hours=3, minutes=10)),
                                                        "scheduled_until": _z(clock.now + timedelta(hours=4))})
    assert r.status_code == 200
    eager_app.extensions["statuspage_delayed"] = []  # ... and the reschedule's jobs are lost too
    clock.advance(hours=1, minutes=15)  # 1h55 before the new start: 180 and 120 both came due
    assert _sweep(eager_app)["reminders"] == 1  # the sweeper is back
    assert _titles(sim, sub) == ["Maintenance in 1 hour 55 minutes: Database upgrade"]
    clock.advance(minutes=1)
    assert _sweep(eager_app)["reminders"] == 0  # the 180-minute one is never sent afterwards
    clock.advance(hours=1, minutes=24)
    assert _sweep(eager_app)["reminders"] == 1
    assert _titles(sim, sub)[1:] == ["Maintenance in 30 minutes: Database upgrade"]


def test_reminder_recorded_before_a_reschedule_is_skipped_when_the_queue_comes_back(
        eager_app, sim, eager_api, clock, monkeypatch):
    sub = _setup(eager_app, eager_api, sim)
    mid = _maintenance(eager_api, clock, starts_in=timedelta(hours=2))
    clock.advance(hours=1)

    def queue_down(*args, **kwargs):
        raise EnqueueError("redis is down")

    monkeypatch.setattr(events_module, "enqueue", queue_down)
    assert _sweep(eager_app)["reminders"] == 1  # recorded with the maintenance, not handed over
    [reminder] = ph.event_rows(eager_app, "maintenance.reminder")
    assert reminder.state == "pending"
    r = eager_api.patch(f"/api/v1/maintenances/{mid}", {"scheduled_for": _z(clock.now + timedelta(hours=6)),
                                                        "scheduled_until": _z(clock.now + timedelta(hours=7))})
    assert r.status_code == 200
    monkeypatch.undo()
    fake.install(monkeypatch).set(clock.now + timedelta(minutes=1))
    _sweep(eager_app)  # the restarted sweeper dispatches what was left
    [reminder] = ph.event_rows(eager_app, "maintenance.reminder")
    assert reminder.state == "skipped" and "rescheduled" in reminder.state_reason
    assert sim.received(sub.token) == []


@pytest.mark.parametrize("automatic", [True, False])
def test_started_and_completed_go_out_at_the_real_transition_times(eager_app, sim, eager_api, clock, automatic):
    sub = _setup(eager_app, eager_api, sim, minutes=[])
    r = eager_api.put("/api/v1/triggers", {"maintenance.started": {"enabled": True},
                                           "maintenance.completed": {"enabled": True}})
    assert r.status_code == 200
    mid = _maintenance(eager_api, clock, starts_in=timedelta(hours=2), lasts=timedelta(hours=2),
                       auto_transition=automatic)

    def received() -> list[tuple[str, datetime]]:
        return [(m.payload["event"], datetime.fromtimestamp(m.payload["timestamp"] / 1000, UTC).replace(tzinfo=None))
                for m in sim.received(sub.token)]

    if automatic:
        clock.advance(hours=1, minutes=59)
        _sweep(eager_app)
        assert received() == []
        clock.advance(minutes=1)
        with eager_app.app_context():
            run_delayed_jobs(eager_app)  # the job queued for the start
        start = clock.now
        clock.advance(hours=2)
        _sweep(eager_app)
        assert received() == [("maintenance.started", start), ("maintenance.completed", clock.now)]
    else:
        clock.advance(minutes=40)  # the admin starts it early, by hand
        assert eager_api.post(f"/api/v1/maintenances/{mid}/updates", {"status": "in_progress"}).status_code == 201
        start = clock.now
        clock.advance(hours=3)  # past the planned start and end: nothing moves by itself
        _sweep(eager_app)
        assert received() == [("maintenance.started", start)]
        clock.advance(minutes=5)
        assert eager_api.post(f"/api/v1/maintenances/{mid}/updates", {"status": "completed"}).status_code == 201
        assert received() == [("maintenance.started", start), ("maintenance.completed", clock.now)]
        _sweep(eager_app)
        assert len(received()) == 2


def test_maintenance_created_in_progress_announces_its_start(eager_app, sim, eager_api, clock):
    sub = _setup(eager_app, eager_api, sim)
    assert eager_api.put("/api/v1/triggers", {"maintenance.started": {"enabled": True}}).status_code == 200
    _maintenance(eager_api, clock, starts_in=timedelta(minutes=-5), status="in_progress")
    assert [m.payload["event"] for m in sim.received(sub.token)] == ["maintenance.started"]


def test_admin_page_sets_the_lead_times_and_previews_the_reminder_row(eager_app, eager_api):
    browser = eager_app.test_client()
    r = browser.post("/admin/login", data={"email": "admin@example.com", "password": "correct horse battery"})
    assert r.status_code == 302
    page = browser.get("/admin/push").get_data(as_text=True)
    assert 'name="title-maintenance.reminder"' in page and 'value="60"' in page
    form = {"section": "settings", "enabled": "1", "icon_url": "", "badge_url": ""}
    assert browser.post("/admin/push", data={**form, "maintenance_reminder_minutes": "1440, 60"}).status_code == 302
    assert eager_api.get("/api/v1/push/settings").json["maintenance_reminder_minutes"] == [1440, 60]
    page = browser.post("/admin/push", data={**form, "maintenance_reminder_minutes": "an hour"}).get_data(as_text=True)
    assert "Enter the reminder lead times as a whole number" in page and 'value="an hour"' in page
    assert eager_api.get("/api/v1/push/settings").json["maintenance_reminder_minutes"] == [1440, 60]
    browser.post("/admin/push", data={**form, "maintenance_reminder_minutes": ""})
    assert eager_api.get("/api/v1/push/settings").json["maintenance_reminder_minutes"] == []


def test_reminder_job_waits_in_the_rq_scheduler_until_its_lead_time(rq_app, sim, rq_api):
    """With Redis, the reminder is an RQ scheduled job at start minus the lead time; the real
    worker runs it when it is due and the subscriber gets it."""
    from statuspage.jobs import JobName

    sub = _setup(rq_app, rq_api, sim, minutes=[90])
    start = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=2)
    r = rq_api.post("/api/v1/maintenances", {"name": "Network change", "scheduled_for": _z(start),
                                             "scheduled_until": _z(start + timedelta(hours=1))})
    assert r.status_code == 201, r.json
    ph.run_worker(rq_app)
    assert sim.received(sub.token) == []
    [when] = [when for job, when in ph.scheduled_jobs(rq_app) if job.func_name == JobName.SEND_DUE_REMINDERS]
    assert abs(when - (start - timedelta(minutes=90)).replace(tzinfo=UTC).timestamp()) < 5

    with rq_app.app_context():  # an hour and a half passes
        row = db.session.get(Incident, r.json["id"])
        row.scheduled_for -= timedelta(minutes=31)
        row.scheduled_until -= timedelta(minutes=31)
        db.session.commit()
    ph.make_due(rq_app)
    ph.run_worker(rq_app)
    [title] = _titles(sim, sub)  # 89 minutes ahead, less the seconds this test took
    assert re.fullmatch(r"Maintenance in 1 hour 2\d minutes: Network change", title), title
