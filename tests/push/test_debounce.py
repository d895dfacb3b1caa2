"""Debounce by state, not by job order, with the real RQ scheduler.

RQ schedules delayed jobs in whole seconds and runs the ones due in the same second in any order.
Here the component flaps through the admin API, its two delayed fan-out jobs are made due in the
same second in a chosen order (their scores in RQ's ScheduledJobRegistry), and a real
`flask worker` process (RQ worker + scheduler, real Redis) runs them; then once more in the other
order, and once with two worker processes taking both jobs at the same moment. The push-service
simulator tells what subscribers got. On SQLite and PostgreSQL.
"""
from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq.registry import ScheduledJobRegistry

from tests.conftest import TEST_SECRET
from tests.push import helpers as ph

ROOT = Path(__file__).resolve().parents[2]
DEBOUNCE = 2
FAN_OUT_JOB = "statuspage.push.delivery.fan_out"
FINAL = {"done", "skipped", "superseded"}
pytestmark = pytest.mark.slow


class Workers:
    """`flask worker` processes (RQ worker with its scheduler) for one test app's queue."""

    def __init__(self, app, sim, tmp_path: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH_", "RATELIMIT_", "FLASK_"))}
        self.env.update({
            "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": app.config["REDIS_URL"],
            "RQ_QUEUE": app.config["RQ_QUEUE"], "SECRET_KEY": TEST_SECRET, "SITE_URL": app.config["SITE_URL"],
            "PUSH_EXTRA_ORIGINS": sim.origin, "PUSH_DEBOUNCE_SECONDS": str(DEBOUNCE), "SWEEP_INTERVAL": "3600",
            "INSTANCE_PATH": str(tmp_path / "worker-instance"), "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": "0",
            "PYTHONUNBUFFERED": "1"})
        self.log = tmp_path / "workers.log"
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=self.env,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request, tmp_path, pg_database, sim):
    app = ph.build_app(request.param, tmp_path, pg_database, sim, redis_url=ph.PUSH_REDIS_URL,
                       PUSH_DEBOUNCE_SECONDS=DEBOUNCE)
    api = ph.Api(app.test_client(), ph.create_admin_token(app))
    assert api.put("/api/v1/triggers", json={"component.down": {"enabled": True},
                                             "component.recovered": {"enabled": True}}).status_code == 200
    sub, _ = ph.subscribe(api.client, sim, ph.generate_keys(app))
    component = api.post("/api/v1/components", json={"name": "API"}).json["id"]
    workers = Workers(app, sim, tmp_path)
    workers.start()
    try:
        yield app, api, sub, component, workers
    finally:
        workers.stop()
        assert "Traceback" not in workers.log.read_text(), workers.log.read_text()[-3000:]
        ph.dispose(app)


def _set(api, component: int, *statuses: str) -> None:
    for status in statuses:
        assert api.patch(f"/api/v1/components/{component}", json={"status": status}).status_code == 200
        time.sleep(0.03)  # the blip: 30 ms apart


def _run_in_order(app, order: str) -> list:
    """Make the waiting fan-out jobs due in the same second -- oldest event's first ("recorded"),
    newest first ("reversed"), or all at the same instant ("together") -- then wait until the
    worker(s) decided every event."""
    scheduled = sorted(ph.scheduled_jobs(app), key=lambda item: item[0].args[0])
    assert len(scheduled) >= 2 and {job.func_name for job, _ in scheduled} == {FAN_OUT_JOB}
    events = {e.id: e for e in ph.event_rows(app)}
    due = max(events[job.args[0]].deliver_after.timestamp() for job, _ in scheduled)
    second = math.floor(max(due, time.time()) + 1)  # a whole second in the future, after every window
    steps = [0.1 + 0.2 * i for i in range(len(scheduled))]
    offsets = {"recorded": steps, "reversed": steps[::-1], "together": [0.5] * len(steps)}[order]
    queue = ph.queue(app)
    registry = ScheduledJobRegistry(queue=queue)
    queue.connection.zadd(registry.key, {job.id: second + offset
                                         for (job, _), offset in zip(scheduled, offsets, strict=True)})
    return _wait_until_decided(app)


def _wait_until_decided(app) -> list:
    deadline = time.monotonic() + 60
    while True:
        rows = ph.event_rows(app)
        if all(e.state in FINAL for e in rows) and not ph.scheduled_jobs(app):
            return rows
        assert time.monotonic() < deadline, [(e.id, e.type, e.state) for e in rows]
        time.sleep(0.1)


def _received(sim, sub) -> list[str]:
    return [m.payload["event"] for m in sim.received(sub.token)]


def _announce(app, api, component: int, status: str) -> None:
    """One change, left alone: its fan-out runs when its window closes."""
    _set(api, component, status)
    _wait_until_decided(app)


def test_a_down_up_blip_sends_nothing_whichever_job_runs_first(setup, sim):
    app, api, sub, component, workers = setup
    for order in ("recorded", "reversed"):
        _set(api, component, "major_outage", "operational")
        rows = _run_in_order(app, order)
        assert _received(sim, sub) == [], order  # no "recovered" for an outage nobody was told of
        down, up = rows[-2:]
        assert (down.type, down.state) == ("component.down", "superseded")
        assert (up.type, up.state) == ("component.recovered", "skipped")
    workers.start()  # two workers take the two jobs at the same moment
    _set(api, component, "partial_outage", "operational")
    _run_in_order(app, "together")
    assert _received(sim, sub) == []
    # The debounce still lets a real outage through.
    _announce(app, api, component, "major_outage")
    assert _received(sim, sub) == ["component.down"]


def test_up_down_inside_the_window_after_an_announced_outage_sends_nothing(setup, sim):
    app, api, sub, component, workers = setup
    _announce(app, api, component, "major_outage")
    assert _received(sim, sub) == ["component.down"]
    for order in ("recorded", "reversed"):
        _set(api, component, "operational", "major_outage")
        rows = _run_in_order(app, order)
        assert _received(sim, sub) == ["component.down"], order  # never "down" again
        up, down = rows[-2:]
        assert (up.state, down.state) == ("superseded", "skipped"), order
    workers.start()
    _set(api, component, "operational", "partial_outage")
    _run_in_order(app, "together")
    assert _received(sim, sub) == ["component.down"]
    # Settling up is news after the announced outage: exactly one "recovered".
    _announce(app, api, component, "operational")
    assert _received(sim, sub) == ["component.down", "component.recovered"]


def test_flapping_that_settles_down_announces_down_once_whichever_job_runs_first(setup, sim):
    app, api, sub, component, _ = setup
    expected: list[str] = []
    for order in ("recorded", "reversed"):
        # down, up, down inside the window: three jobs due in the same second, the last change decides
        _set(api, component, "major_outage", "operational", "partial_outage")
        rows = _run_in_order(app, order)
        expected.append("component.down")
        assert _received(sim, sub) == expected, order
        assert [e.state for e in rows[-3:]] == ["superseded", "superseded", "done"], order
        _announce(app, api, component, "operational")
        expected.append("component.recovered")
        assert _received(sim, sub) == expected, order
