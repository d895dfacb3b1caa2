"""Page benchmark: the public page under a crowd, in one run.

    make bench-page                                   # 10 s per wrk run, 64 connections
    make bench-page BENCH_ARGS="--duration 20 --subscribers 20000"

What it does, on this machine only:

1. A PostgreSQL database of its own (``statuspage_bench_page``, dropped at the end), migrated, with
   the data of issue 10's report: 12 components in 3 groups, 2 active incidents, 60 resolved ones.
   The whole snapshot is published (``flask publish``'s code path).
2. Starts what the README's production section starts: gunicorn with ``deploy/gunicorn.conf.py``,
   two ``flask worker`` processes and one ``flask worker --publish-only`` (Redis db 14, flushed),
   and nginx twice: the shipped
   ``deploy/nginx.conf`` in front of gunicorn ("front"), and a bare nginx handing out the same
   files ("static", the limit).
3. For ``/``, ``/incidents/<id>`` and ``/api/v2/summary.json``: ``wrk -t2 -c64`` against static,
   front and gunicorn alone, one after the other (interleaved per path, so all three see the same
   machine load).
4. Freshness: incident updates and component status changes through the admin API at random
   intervals; the time from the request to the published file holding the change (the snapshot
   lag), and a burst of 50 status changes from 5 threads (how many publish rounds it took).
5. Under fan-out: 20,000 subscribers on a local HTTPS mock push service (bench/mockpush.py, as in
   ``make bench``); incident updates fan out back to back while wrk runs against the front, and
   lag probes run meanwhile.

stdout: one JSON line per path, then one for the worst path (lowest front/static ratio) with the
freshness and fan-out figures:
``{"path", "app_rps", "front_rps", "static_rps", "app_ratio", "front_ratio", "p99_ms", ...}``.
Progress goes to stderr.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fanout import (  # noqa: E402  (bench/ is not a package)
    LOCK_PATH,
    MockService,
    load_subscriptions,
    make_certificate,
    start_workers,
    stop_workers,
    subscriber_keys,
    wait_for_workers,
)
from nginxrun import Nginx, front_site, static_site  # noqa: E402

OUT = ROOT / "bench" / "out" / "page"
DB_NAME = "statuspage_bench_page"
SUBJECT = "mailto:bench@example.com"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_P99 = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def wrk(url: str, duration: int, connections: int, threads: int = 2) -> dict:
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    p99 = WRK_P99.search(out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errors = sum(int(x) for x in WRK_SOCKET.search(out).groups()) if WRK_SOCKET.search(out) else 0
    non2xx = int(WRK_NON2XX.search(out).group(1)) if WRK_NON2XX.search(out) else 0
    return {"rps": float(WRK_RPS.search(out).group(1)),
            "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 2) if p99 else None,
            "errors": errors + non2xx}


# --------------------------------------------------------------------------- data


def seed(app) -> dict:
    """Issue 10's data: 12 components in 3 groups, 2 active incidents, 60 resolved ones."""
    from statuspage import events
    from statuspage.auth import create_token, create_user
    from statuspage.components import create_component, create_group
    from statuspage.extensions import db
    from statuspage.incidents import create_incident, post_update
    from statuspage.push.triggers import ensure_triggers

    with app.app_context():
        ensure_triggers()
        groups = [create_group({"name": name}) for name in ("Core platform", "Customer apps", "Integrations")]
        components = [create_component({"name": f"{g.name} service {i}", "group_id": g.id,
                                        "description": "Serves customers"})
                      for g in groups for i in range(4)]
        events.commit()
        body = ("We are investigating **elevated error rates** on the API and dashboard. Requests to "
                "`/v1/charges` may fail intermittently. Next update in 30 minutes.")
        for n in range(60):
            incident = create_incident({"name": f"Past incident {n}", "status": "investigating", "impact": "minor",
                                        "body": body, "notify": False,
                                        "components": {str(components[n % 12].id): "degraded_performance"}})
            post_update(incident, {"status": "identified", "body": "We found the cause.", "notify": False})
            post_update(incident, {"status": "resolved", "body": "Fixed; all systems normal.", "notify": False,
                                   "components": {str(components[n % 12].id): "operational"}})
            events.commit()
        active = []
        for n, impact in enumerate(("major", "minor")):
            incident = create_incident({"name": f"Active incident {n}", "impact": impact, "body": body,
                                        "notify": False,
                                        "components": {str(components[n].id): "partial_outage"}})
            post_update(incident, {"status": "identified", "body": "Cause found, fix rolling out.", "notify": False})
            events.commit()
            active.append(incident.id)
        create_user("bench@example.com", "bench password 123", "admin")
        _, token = create_token("bench@example.com", "bench")
        db.session.commit()
        return {"components": [c.id for c in components], "active": active, "token": token}


def publish_all(app) -> None:
    from statuspage.publish.publisher import publish_pending, request_publish
    from statuspage.publish.registry import Topic

    with app.app_context():
        request_publish(Topic.ALL, schedule=False)
        report = publish_pending()
    log(f"published {report.rendered} pages, {report.written} files")


# --------------------------------------------------------------------------- freshness


class Api:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.base + path, method=method, data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())


def probe_lag(api: Api, snapshot: Path, incident_id: int, component_id: int, count: int,
              stop: threading.Event | None = None) -> list[float]:
    """What changes during an incident, alternately: an update to an incident (its page must show
    it) and a component's status (components.json must show it). Seconds from sending the
    request to the published file holding the change."""
    lags = []
    page = snapshot / f"incidents/{incident_id}/index.html"
    components = snapshot / "api/v2/components.json"
    for n in range(count):
        if stop is not None and stop.is_set():
            break
        start = time.perf_counter()
        if n % 2 == 0:
            marker = f"Probe {secrets.token_hex(4)}"
            api.call("POST", f"/api/v1/incidents/{incident_id}/updates", {"body": marker, "notify": False})

            def published(marker=marker.encode()) -> bool:
                return marker in page.read_bytes()
        else:
            status = "degraded_performance" if n % 4 == 1 else "operational"
            api.call("PATCH", f"/api/v1/components/{component_id}", {"status": status})

            def published(status=status) -> bool:
                data = json.loads(components.read_bytes())
                return any(c["id"] == str(component_id) and c["status"] == status for c in data["components"])
        deadline = start + 30
        while not published():
            if time.perf_counter() > deadline:
                raise RuntimeError("a change did not reach the snapshot within 30 s")
            time.sleep(0.002)
        lags.append(time.perf_counter() - start)
        time.sleep(random.uniform(0.2, 1.2))
    return lags


def burst(app, api: Api, index: Path, components: list[int]) -> dict:
    from statuspage.extensions import db
    from statuspage.models import PublishStatus

    def rounds() -> int:
        with app.app_context():
            value = db.session.get(PublishStatus, 1).rounds
            db.session.remove()
            return value

    before = rounds()
    start = time.perf_counter()

    cycle = ("degraded_performance", "partial_outage", "major_outage", "operational")

    def changes(cid: int) -> None:
        for n in range(10):
            api.call("PATCH", f"/api/v1/components/{cid}", {"status": cycle[n % 4]})

    chosen = components[:5]
    threads = [threading.Thread(target=changes, args=(cid,)) for cid in chosen]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = time.perf_counter() - start
    final = cycle[9 % 4]
    path = index.parent / "api/v2/components.json"

    def published() -> bool:
        statuses = {c["id"]: c["status"] for c in json.loads(path.read_bytes())["components"]}
        return all(statuses.get(str(cid)) == final for cid in chosen)

    while not published():
        time.sleep(0.002)
    return {"burst_changes": 50, "burst_seconds": round(sent, 2),
            "burst_published_after_ms": round((time.perf_counter() - start - sent) * 1000),
            "burst_rounds": rounds() - before}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


# --------------------------------------------------------------------------- fan-out


class FanOuts(threading.Thread):
    """Incident updates that notify 20k subscribers, back to back, until stopped."""

    def __init__(self, app, incident_id: int) -> None:
        super().__init__(daemon=True)
        self.app, self.incident_id = app, incident_id
        self.stop = threading.Event()
        self.results: list[tuple[int, float]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        from sqlalchemy import select

        from statuspage import events
        from statuspage.extensions import db
        from statuspage.incidents import get_incident, post_update
        from statuspage.models import Event

        try:
            n = 0
            while not self.stop.is_set():
                n += 1
                with self.app.app_context():
                    post_update(get_incident(self.incident_id), {"body": f"Update {n}: still working on it."})
                    db.session.flush()
                    event_id = db.session.execute(select(Event.id).order_by(Event.id.desc()).limit(1)).scalar_one()
                    start = time.perf_counter()
                    events.commit()
                    while True:
                        db.session.remove()
                        event = db.session.get(Event, event_id)
                        if event.state in ("done", "skipped", "superseded"):
                            break
                        time.sleep(0.05)
                    self.results.append((event.sent_count, time.perf_counter() - start))
                    db.session.remove()
        except BaseException as exc:  # reported by the main thread
            self.error = exc


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The public page under a crowd: gunicorn vs nginx front vs static.")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--subscribers", type=int, default=20_000, help="for the fan-out phase (0: skip it)")
    parser.add_argument("--lag-probes", type=int, default=40)
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_PAGE_REDIS_URL", "redis://127.0.0.1:6379/14"),
                        help="a Redis db for this benchmark alone: FLUSHED before and after")
    args = parser.parse_args(argv)
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            parser.error(f"{tool} is not installed (apt-get install {tool})")

    # One benchmark at a time on this machine (both sets of numbers would be wrong otherwise).
    lock = open(LOCK_PATH, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"waiting for another benchmark to finish (lock {LOCK_PATH})...")
        fcntl.flock(lock, fcntl.LOCK_EX)

    import psycopg
    from redis import Redis

    from statuspage.push.crypto import generate_vapid_keypair

    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    dsn = args.pg_admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"
    cert, key = make_certificate(ROOT / "bench" / "out" / "tls")
    mock_port = free_port()
    origin = f"https://127.0.0.1:{mock_port}"
    private_key, public_key = generate_vapid_keypair()
    app_port, front_port, static_port = free_port(), free_port(), free_port()
    snapshot = OUT / "public"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PUBLIC_", "GUNICORN_", "FLASK_"))},
        "DATABASE_URL": "postgresql+psycopg://" + dsn.split("://", 1)[1], "REDIS_URL": args.redis_url,
        "RQ_QUEUE": "statuspage-bench-page", "SECRET_KEY": secrets.token_urlsafe(32),
        "INSTANCE_PATH": str(OUT / "instance"), "PUBLIC_SNAPSHOT_DIR": str(snapshot),
        "SITE_URL": f"http://127.0.0.1:{front_port}", "SITE_NAME": "Example Status",
        "VAPID_PUBLIC_KEY": public_key, "VAPID_PRIVATE_KEY": private_key, "VAPID_SUBJECT": SUBJECT,
        "PUSH_EXTRA_ORIGINS": origin, "PUSH_CA_BUNDLE": str(cert), "PUSH_DEBOUNCE_SECONDS": "0",
        "RATELIMIT_STORAGE_URI": "memory://", "LOG_LEVEL": "WARNING", "TRUSTED_PROXIES": "1",
    }
    os.environ.update(env)
    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    with psycopg.connect(args.pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    procs: list = []
    workers: list[subprocess.Popen] = []
    mock = None
    gunicorn = None
    try:
        from flask_migrate import upgrade

        from statuspage import create_app

        app = create_app()
        with app.app_context():
            with contextlib.redirect_stderr(io.StringIO()):
                upgrade()
        data = seed(app)
        publish_all(app)
        index = snapshot / "index.html"
        incident_path = f"/incidents/{data['active'][0]}"

        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "-b", f"127.0.0.1:{app_port}", "app:app"], cwd=ROOT, env=env,
            stdout=(OUT / "gunicorn.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        workers = start_workers(2, env)
        wait_for_workers(args.redis_url, env["RQ_QUEUE"], workers)
        # The README's production set-up: plus one small worker for the publish queue alone.
        workers.append(subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker", "--publish-only"],
                                        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True))
        front = Nginx(OUT / "nginx-front", front_site(snapshot, front_port, app_port), workers=2)
        static = Nginx(OUT / "nginx-static", static_site(snapshot, static_port), workers=2)
        procs += [front, static]
        front.wait(front_port)
        static.wait(static_port)
        wait_http(f"http://127.0.0.1:{app_port}/api/v2/status.json")
        load = os.getloadavg()
        log(f"load average before the runs: {load[0]:.2f}; machine: {os.cpu_count()} cores")

        paths = ["/", incident_path, "/api/v2/summary.json"]
        results: dict[str, dict] = {}
        for path in paths:
            row = {}
            for name, port in (("static", static_port), ("front", front_port), ("app", app_port)):
                row[name] = wrk(f"http://127.0.0.1:{port}{path}", args.duration, args.connections)
                log(f"{path:28} {name:6} {row[name]['rps']:>10,.0f} req/s  p99 {row[name]['p99_ms']} ms  "
                    f"errors {row[name]['errors']}")
            results[path] = row

        api = Api(f"http://127.0.0.1:{app_port}", data["token"])
        log(f"freshness: {args.lag_probes} incident updates and component status changes at random intervals")
        quiet_lags = probe_lag(api, snapshot, data["active"][1], data["components"][11], args.lag_probes)
        burst_stats = burst(app, api, index, data["components"])
        log(f"  lag p50 {percentile(quiet_lags, 50) * 1000:.0f} ms, p95 {percentile(quiet_lags, 95) * 1000:.0f} ms, "
            f"max {max(quiet_lags) * 1000:.0f} ms; burst: {burst_stats}")

        fan_stats: dict = {}
        fan_lags: list[float] = []
        if args.subscribers:
            keys = subscriber_keys(args.subscribers)
            load_subscriptions(dsn, keys, args.subscribers, origin)
            mock = MockService(mock_port, cert, key, 0.0, 1)
            fan = FanOuts(app, data["active"][0])
            fan.start()
            stop = threading.Event()
            lag_thread = threading.Thread(target=lambda: fan_lags.extend(
                probe_lag(api, snapshot, data["active"][1], data["components"][10], 10_000, stop)), daemon=True)
            lag_thread.start()
            log(f"under fan-out: {args.subscribers:,} subscribers per update, updates back to back")
            for path in paths:
                r = wrk(f"http://127.0.0.1:{front_port}{path}", args.duration, args.connections)
                results[path]["front_fanout"] = r
                log(f"{path:28} front  {r['rps']:>10,.0f} req/s  p99 {r['p99_ms']} ms  errors {r['errors']}")
            stop.set()
            fan.stop.set()
            fan.join(timeout=120)
            lag_thread.join(timeout=60)
            if fan.error:
                raise fan.error
            sent = sum(s for s, _ in fan.results)
            seconds = sum(t for _, t in fan.results)
            fan_stats = {"fanouts": len(fan.results), "fanout_msgs_per_s": round(sent / seconds) if seconds else 0,
                         "fanout_lag_p95_ms": round(percentile(fan_lags, 95) * 1000),
                         "fanout_lag_probes": len(fan_lags)}
            log(f"  {len(fan.results)} fan-outs, {sent:,} pushes at {fan_stats['fanout_msgs_per_s']:,}/s; "
                f"lag p95 during fan-out {fan_stats['fanout_lag_p95_ms']} ms over {len(fan_lags)} probes")
    finally:
        for p in procs:
            p.stop()
        if gunicorn is not None and gunicorn.poll() is None:
            os.killpg(gunicorn.pid, signal.SIGTERM)
            gunicorn.wait(timeout=30)
        if workers:
            stop_workers(workers)
        if mock is not None:
            mock.stop()
        redis.flushdb()
        with contextlib.suppress(Exception):
            from statuspage.extensions import db

            with app.app_context():
                db.engine.dispose()
        with psycopg.connect(args.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')

    lines = []
    for path, row in results.items():
        static_rps = row["static"]["rps"]
        line = {"path": path, "app_rps": round(row["app"]["rps"], 1), "front_rps": round(row["front"]["rps"], 1),
                "static_rps": round(static_rps, 1), "app_ratio": round(row["app"]["rps"] / static_rps, 4),
                "front_ratio": round(row["front"]["rps"] / static_rps, 3), "p99_ms": row["front"]["p99_ms"],
                "front_errors": row["front"]["errors"], "app_p99_ms": row["app"]["p99_ms"],
                "app_errors": row["app"]["errors"], "static_p99_ms": row["static"]["p99_ms"]}
        if "front_fanout" in row:
            line.update({"fanout_front_rps": round(row["front_fanout"]["rps"], 1),
                         "fanout_front_ratio": round(row["front_fanout"]["rps"] / static_rps, 3),
                         "fanout_p99_ms": row["front_fanout"]["p99_ms"],
                         "fanout_errors": row["front_fanout"]["errors"]})
        lines.append(line)
        print(json.dumps(line), flush=True)
    worst = min(lines, key=lambda item: (item["front_ratio"], item["app_ratio"]))
    print(json.dumps({**worst, "worst": True, "connections": args.connections, "duration_s": args.duration,
                      "lag_p50_ms": round(percentile(quiet_lags, 50) * 1000),
                      "lag_p95_ms": round(percentile(quiet_lags, 95) * 1000),
                      "lag_max_ms": round(max(quiet_lags) * 1000), **burst_stats, **fan_stats,
                      "subscribers": args.subscribers, "cores": os.cpu_count(),
                      "load_before": round(load[0], 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
