"""Integrations against a live server (werkzeug, threaded, PostgreSQL, the in-process job runner that
`make run` uses) and real tools:

- Debian's `prometheus-alertmanager` on loopback with a webhook receiver pointing at the app: an
  alert fired through its v2 API takes a component to major_outage, resolving it recovers it, and
  the subscriber gets both pushes through the push-service simulator;
- races with real threads: two alerts for one component from two tools, and an admin override while
  alerts keep arriving;
- heartbeat timing (the job each ping schedules marks a silent heartbeat missed on time);
- tokens never reach a log line: the development server's request log, an app error, and gunicorn's
  access log.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from statuspage.extensions import db
from statuspage.integrations.models import IntegrationReceipt
from statuspage.jobs import LocalRunner
from statuspage.push.simulator import PushSimulator
from tests.integration_support import am_alert, am_payload, events, load, statuses
from tests.push import helpers as ph

ROOT = Path(__file__).resolve().parent.parent


# --- a live server ---------------------------------------------------------------------------------

def http(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
         timeout: float = 10) -> tuple[int, Any]:
    """A plain HTTP client call: (status, the JSON body, or its text)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _decoded(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _decoded(exc.read())


def _decoded(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Live:
    app: Any
    url: str
    sim: PushSimulator
    admin: dict[str, str]
    components: dict[str, int]

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return http(method, self.url + path, body, self.admin)

    def integration(self, kind: str, **fields: Any) -> dict[str, Any]:
        status, data = self.api("POST", "/api/v1/integrations", {"kind": kind, "name": kind, **fields})
        assert status == 201, data
        return data

    def hook(self, integration: dict[str, Any], payload: Any = None, method: str = "POST") -> tuple[int, Any]:
        return http(method, integration["url"], payload, {"Authorization": f"Bearer {integration['token']}"})


@pytest.fixture
def sim() -> Iterator[PushSimulator]:
    with PushSimulator() as simulator:
        yield simulator


@pytest.fixture
def live(tmp_path, pg_database, sim) -> Iterator[Live]:
    app = ph.make_app(pg_database, tmp_path, JOBS_EAGER=False, REDIS_URL=None, PUSH_EXTRA_ORIGINS=[sim.origin],
                      PUSH_DEBOUNCE_SECONDS=0)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["SITE_URL"] = url
    app.extensions["statuspage_runner"] = LocalRunner(app)  # jobs in the background, as `make run` runs them
    thread = threading.Thread(target=server.serve_forever, name="live-hooks", daemon=True)
    thread.start()
    token = ph.create_admin_token(app)
    live = Live(app, url, sim, {"Authorization": f"Bearer {token}"}, {})
    for name in ("API", "Website"):
        status, data = live.api("POST", "/api/v1/components", {"name": name})
        assert status == 201
        live.components[name] = data["id"]
    try:
        yield live
    finally:
        server.shutdown()
        thread.join(timeout=10)
        ph.dispose(app)


def _subscribe_to_component_pushes(live: Live):
    """A subscriber (simulator-backed) and the component triggers switched on."""
    public_key = ph.generate_keys(live.app)
    sub, _ = ph.subscribe(live.app.test_client(), live.sim, public_key)
    status, _ = live.api("PUT", "/api/v1/triggers", {"component.down": {"enabled": True},
                                                      "component.recovered": {"enabled": True}})
    assert status == 200
    return sub


# --- the real Alertmanager ---------------------------------------------------------------------------

def _alertmanager_binary() -> str:
    path = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if path or os.geteuid() != 0 or not shutil.which("apt-get"):
        return path or ""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "prometheus-alertmanager"], env=env, check=False, timeout=900)
    return shutil.which("prometheus-alertmanager") or ""


@pytest.fixture
def alertmanager(tmp_path) -> Iterator:
    binary = _alertmanager_binary()
    if not binary:
        pytest.skip("Debian's prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    procs: list[subprocess.Popen] = []

    def start(receiver_url: str, token: str) -> str:
        # Seconds, not Alertmanager's minutes: the test waits for real notifications.
        config = {
            "route": {"receiver": "statuspage", "group_by": ["alertname"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "statuspage", "webhook_configs": [{
                "url": receiver_url, "send_resolved": True,
                "http_config": {"authorization": {"type": "Bearer", "credentials": token}}}]}],
        }
        config_file = tmp_path / "alertmanager.yml"
        config_file.write_text(json.dumps(config))  # JSON is YAML
        port = ph.free_port()
        log = (tmp_path / "alertmanager.log").open("w")
        proc = subprocess.Popen(
            [binary, f"--config.file={config_file}", f"--storage.path={tmp_path / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=debug"],
            stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"

        def ready():
            if proc.poll() is not None:
                raise AssertionError("alertmanager exited:\n" + (tmp_path / "alertmanager.log").read_text())
            try:
                return http("GET", base + "/-/ready", timeout=1)[0] == 200
            except OSError:
                return False

        wait_for(ready, 20, "alertmanager to be ready")
        return base

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def test_real_alertmanager_takes_a_component_down_and_back_and_subscribers_are_pushed(live, alertmanager, tmp_path):
    sub = _subscribe_to_component_pushes(live)
    integration = live.integration("alertmanager")
    base = alertmanager(integration["url"], integration["token"])
    api_id = live.components["API"]

    labels = {"alertname": "APIDown", "component": "api", "severity": "critical", "instance": "api-1"}
    fired_at = datetime.now(UTC)
    status, _ = http("POST", base + "/api/v2/alerts", [{
        "labels": labels, "annotations": {"summary": "API is not answering"},
        "startsAt": fired_at.isoformat().replace("+00:00", "Z"), "generatorURL": "http://prometheus.test/graph"}])
    assert status == 200
    wait_for(lambda: statuses(live.app)["API"] == ("major_outage", "monitoring"), 20, "API to go down")
    down = wait_for(lambda: live.sim.received(sub.token), 20, "the component.down push")
    assert down[0].payload["event"] == "component.down"
    assert down[0].payload["title"] == "API is down"
    assert down[0].payload["tag"] == f"component-{api_id}"

    # Resolving: the same alert with endsAt now. Alertmanager sends "resolved" at the next group_interval.
    status, _ = http("POST", base + "/api/v2/alerts", [{
        "labels": labels, "annotations": {"summary": "API is not answering"},
        "startsAt": fired_at.isoformat().replace("+00:00", "Z"),
        "endsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}])
    assert status == 200
    wait_for(lambda: statuses(live.app)["API"] == ("operational", "monitoring"), 20, "API to recover")
    messages = wait_for(lambda: (m := live.sim.received(sub.token)) and len(m) >= 2 and m, 20,
                        "the component.recovered push")
    assert [m.payload["event"] for m in messages] == ["component.down", "component.recovered"]
    assert messages[1].payload["title"] == "API recovered"
    assert events(live.app, "API") == [("component.down", "major_outage"), ("component.recovered", "operational")]

    # What Alertmanager sent is what the admin sees: version 4 payloads, firing then resolved.
    with live.app.app_context():
        receipts = list(db.session.execute(select(IntegrationReceipt).order_by(IntegrationReceipt.id)).scalars())
        bodies = [json.loads(r.payload) for r in receipts if r.http_status == 200]
        db.session.remove()
    assert [b["version"] for b in bodies] == ["4"] * len(bodies)
    assert bodies[0]["status"] == "firing" and bodies[-1]["status"] == "resolved"
    assert bodies[-1]["alerts"][0]["fingerprint"] == bodies[0]["alerts"][0]["fingerprint"]
    assert statuses(live.app)["Website"] == ("operational", "monitoring")


# --- races ----------------------------------------------------------------------------------------

def _together(*calls: tuple) -> list[Any]:
    """Run each (function, *args) on its own thread, all released at the same instant; results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index, call):
        barrier.wait()
        results[index] = call[0](*call[1:])

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_two_tools_racing_on_one_component_always_settle_on_the_worst_firing_alert(live):
    am = live.integration("alertmanager")
    grafana = live.integration("grafana")
    rounds = 8
    start = datetime.now(UTC) - timedelta(hours=1)
    for n in range(rounds):
        starts = start + timedelta(minutes=n)
        critical = am_alert("API", name="Errors", severity="critical", starts=starts, fingerprint="am-errors")
        warning = load("grafana_firing")
        for alert in warning["alerts"]:
            alert["labels"]["component"] = "API"
            alert["startsAt"] = starts.strftime("%Y-%m-%dT%H:%M:%SZ")
        results = _together((live.hook, am, am_payload(critical)), (live.hook, grafana, warning))
        assert [r[0] for r in results] == [200, 200]
        assert statuses(live.app)["API"][0] == "major_outage", n

        ended = starts + timedelta(seconds=30)
        resolved = {**critical, "status": "resolved", "endsAt": ended.strftime("%Y-%m-%dT%H:%M:%SZ")}
        # The critical one resolves while the warning is re-sent: the warning keeps it partially down.
        results = _together((live.hook, am, am_payload(resolved)), (live.hook, grafana, warning))
        assert [r[0] for r in results] == [200, 200]
        assert statuses(live.app)["API"][0] == "partial_outage", n

        grafana_resolved = json.loads(json.dumps(warning))
        for alert in grafana_resolved["alerts"]:
            alert["status"], alert["endsAt"] = "resolved", ended.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert live.hook(grafana, grafana_resolved)[0] == 200
        assert statuses(live.app)["API"][0] == "operational", n
    # Every round is exactly one outage and one recovery, in order: no lost or doubled transition. (The
    # outage's first status is whichever tool's request committed first.)
    recorded = events(live.app, "API")
    assert [t for t, _ in recorded] == ["component.down", "component.recovered"] * rounds
    assert {s for t, s in recorded if t == "component.down"} <= {"major_outage", "partial_outage"}


def test_two_alerts_for_one_component_in_concurrent_requests_of_one_integration(live):
    am = live.integration("alertmanager")
    start = datetime.now(UTC) - timedelta(hours=1)
    for n in range(6):
        starts = start + timedelta(minutes=n)
        a = am_alert("Website", name="A", severity="warning", starts=starts, fingerprint="a")
        b = am_alert("Website", name="B", severity="critical", starts=starts, fingerprint="b")
        _together((live.hook, am, am_payload(a)), (live.hook, am, am_payload(b)))
        assert statuses(live.app)["Website"][0] == "major_outage"
        ended = (starts + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        _together((live.hook, am, am_payload({**a, "status": "resolved", "endsAt": ended})),
                  (live.hook, am, am_payload({**b, "status": "resolved", "endsAt": ended})))
        assert statuses(live.app)["Website"][0] == "operational"
    recorded = events(live.app, "Website")
    assert [t for t, _ in recorded] == ["component.down", "component.recovered"] * 6


def test_an_admin_override_during_a_stream_of_alerts_wins_and_holds_until_handed_back(live):
    am = live.integration("alertmanager")
    api_id = live.components["API"]
    start = datetime.now(UTC) - timedelta(hours=1)
    sent: list[int] = []
    stop = threading.Event()

    def stream():
        # Fire and resolve episodes back to back, ending with one still firing.
        n = 0
        while not stop.is_set() or n % 2 == 0:  # the last one sent is a firing one
            starts = start + timedelta(minutes=n // 2)
            alert = am_alert("API", name="Flappy", starts=starts, fingerprint="flappy")
            if n % 2:
                alert.update(status="resolved", endsAt=(starts + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ"))
            status, _ = live.hook(am, am_payload(alert))
            sent.append(status)
            n += 1

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        wait_for(lambda: len(sent) >= 6, 20, "alerts to flow")
        # Several admins' requests land in the middle of the stream.
        override = (live.api, "PATCH", f"/api/v1/components/{api_id}", {"status": "degraded_performance"})
        results = _together(override, override, override)
        assert all(r[0] == 200 for r in results)
        count = len(sent)
        wait_for(lambda: len(sent) >= count + 6, 20, "more alerts after the override")
    finally:
        stop.set()
        streamer.join(timeout=30)
    assert set(sent) == {200}
    assert statuses(live.app)["API"] == ("degraded_performance", "manual")

    status, data = live.api("POST", f"/api/v1/components/{api_id}/hand-back")
    assert status == 200
    assert (data["status"], data["status_owner"]) == ("major_outage", "monitoring")  # the stream ended firing


# --- heartbeat timing -------------------------------------------------------------------------------

def test_a_silent_heartbeat_goes_down_when_interval_plus_grace_passes_and_the_next_ping_recovers(live):
    beat = live.integration("heartbeat", component_id=live.components["Website"], interval_seconds=10,
                            grace_seconds=2)
    status, data = live.hook(beat, method="GET")
    pinged = time.monotonic()
    assert status == 200 and "next one is due by" in data["notes"][0]

    time.sleep(max(0.0, pinged + 9 - time.monotonic()))
    assert statuses(live.app)["Website"][0] == "operational"  # not before interval + grace
    wait_for(lambda: statuses(live.app)["Website"][0] == "major_outage", 8, "the missed heartbeat")
    missed_after = time.monotonic() - pinged
    # The job the ping scheduled runs at interval + grace + 1 s; not the 30 s sweeper.
    assert 12 <= missed_after < 16, missed_after

    status, data = live.hook(beat, method="POST")
    assert status == 200 and data["changed"][0]["new_status"] == "operational"
    assert events(live.app, "Website") == [("component.down", "major_outage"), ("component.recovered", "operational")]


# --- tokens never logged ---------------------------------------------------------------------------

class _Capture:
    def __init__(self) -> None:
        import logging

        self.lines: list[str] = []
        self.handler = logging.Handler()
        self.handler.emit = lambda record: self.lines.append(self.handler.format(record))
        self.loggers = [logging.getLogger(), logging.getLogger("werkzeug")]

    def __enter__(self):
        import logging

        from statuspage.integrations.logs import RedactTokens

        self.handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
        self.handler.addFilter(RedactTokens())  # as installed on the root handlers by create_app
        for logger in self.loggers:
            logger.addHandler(self.handler)
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel("INFO")
        return self

    def __exit__(self, *exc):
        for logger, level in zip(self.loggers, self.levels, strict=True):
            logger.removeHandler(self.handler)
            logger.setLevel(level)


def test_the_token_in_a_receiver_url_never_reaches_the_request_log_or_an_error_log(live, monkeypatch):
    from statuspage.integrations import service

    beat = live.integration("heartbeat", component_id=live.components["API"], interval_seconds=60)
    token = beat["token"]
    with _Capture() as capture:
        assert http("GET", beat["url_with_token"])[0] == 200
        assert http("POST", beat["url"] + "/" + token[:-2] + "xx")[0] == 401
        monkeypatch.setattr(service, "receive", lambda *a: (_ for _ in ()).throw(RuntimeError(f"boom {token}")))
        assert http("GET", beat["url_with_token"])[0] == 500
        time.sleep(0.2)
    text = "\n".join(capture.lines)
    assert f"/api/hooks/{beat['id']}/[redacted]" in text  # the request lines were logged, redacted
    assert "unhandled error on GET" in text and "boom sp_hook_[redacted]" in text
    assert token not in text and token[:-2] not in text


def test_gunicorns_access_log_never_shows_an_integration_token(tmp_path):
    db_file = tmp_path / "gunicorn.db"
    app = ph.make_app(f"sqlite:///{db_file}", tmp_path)
    admin = ph.Api(app.test_client(), ph.create_admin_token(app))
    component = admin.post("/api/v1/components", json={"name": "API"}).json["id"]
    created = admin.post("/api/v1/integrations", json={"kind": "heartbeat", "name": "cron",
                                                       "component_id": component}).json
    ph.dispose(app)
    token = created["token"]
    port = ph.free_port()
    access_log, error_log = tmp_path / "access.log", tmp_path / "error.log"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{db_file}", "SECRET_KEY": "gunicorn-test-not-secret",
           "INSTANCE_PATH": str(tmp_path / "instance"), "REDIS_URL": "", "RATELIMIT_ENABLED": "0",
           "SITE_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}", "--access-logfile",
         str(access_log), "--error-logfile", str(error_log), "--log-level", "debug", "app:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api/hooks/{created['id']}"
    try:
        def up():
            try:
                return http("GET", f"{base}/{token}", timeout=2)[0] == 200
            except OSError:
                assert proc.poll() is None, error_log.read_text()
                return False

        wait_for(up, 30, "gunicorn to serve the ping", interval=0.3)
        assert http("GET", f"{base}?token={token}")[0] == 401  # not a supported form, and not logged either
        assert http("POST", base, headers={"Authorization": f"Bearer {token}"})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    logged = access_log.read_text() + error_log.read_text()
    assert f"/api/hooks/{created['id']}/[redacted]" in logged
    assert token not in logged and token[len("sp_hook_"):] not in logged
