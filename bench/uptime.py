"""Uptime bars benchmark: what the 90-day bars cost the public page, in one run.

    make bench-uptime                                   # 30 components, a change every 2 hours
    make bench-uptime BENCH_ARGS="--components 100 --changes-per-day 48"

Creates a PostgreSQL database of its own (``statuspage_bench_uptime``, dropped at the end), runs
the migrations, loads N components in groups with 90 days of status history (COPY) and
incidents, then renders in-process, interleaved round by round (so machine load hits both alike):

* baseline: ``GET /`` with every component's uptime display off (the page without bars);
* subject: ``GET /`` with the bars (``build_uptime``: one query over the window's history, one
  over its incidents, the bars in the template);
* also ``GET /api/v2/uptime.json`` and ``build_uptime()`` alone.

Prints medians in ms and the ratio subject / baseline; the last stdout line is JSON.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import io
import json
import os
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "statuspage_bench_uptime"
LOCK_PATH = "/tmp/statuspage-bench.lock"
STATUSES = ["degraded_performance", "partial_outage", "major_outage", "under_maintenance"]


def load_history(dsn: str, components: int, per_day: int, groups: int) -> int:
    """COPY the components, their history and some incidents; returns the number of history rows."""
    import psycopg

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = now - dt.timedelta(days=95)
    rng = random.Random(13)
    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            for g in range(1, groups + 1):
                cur.execute("INSERT INTO component_groups (id, name, position, created_at, updated_at) "
                            "VALUES (%s, %s, %s, %s, %s)", (g, f"Group {g}", g, start, start))
            with cur.copy("COPY components (id, name, group_id, position, status, showcase, created_at, updated_at) "
                          "FROM STDIN") as copy:
                for c in range(1, components + 1):
                    copy.write_row((c, f"Component {c}", (c % groups) + 1 if groups else None, c, "operational",
                                    True, start, start))
            rows = 0
            with cur.copy("COPY component_status_changes (component_id, status, changed_at) FROM STDIN") as copy:
                for c in range(1, components + 1):
                    copy.write_row((c, "operational", start))
                    t = start
                    step = dt.timedelta(days=1) / per_day
                    while t < now:
                        t += step * rng.uniform(0.5, 1.5)
                        # Mostly operational, now and then something worse for a while.
                        status = rng.choice(STATUSES) if rng.random() < 0.3 else "operational"
                        copy.write_row((c, status, min(t, now)))
                        rows += 1
            with cur.copy("COPY incidents (id, kind, name, status, impact, created_at, updated_at, resolved_at, "
                          "auto_transition, auto_transition_to_maintenance_state) FROM STDIN") as copy:
                for i in range(1, 201):
                    opened = start + dt.timedelta(hours=rng.uniform(0, 95 * 24))
                    closed = opened + dt.timedelta(hours=rng.uniform(0.2, 6))
                    copy.write_row((i, "incident", f"Incident {i}", "resolved", "minor", opened, closed, closed,
                                    True, True))
            with cur.copy("COPY incident_components (incident_id, component_id) FROM STDIN") as copy:
                for i in range(1, 201):
                    for c in rng.sample(range(1, components + 1), min(2, components)):
                        copy.write_row((i, c))
            for table in ("component_groups", "components", "incidents", "component_status_changes"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            cur.execute("ANALYZE")
    return rows


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="What the uptime bars cost the public page.")
    parser.add_argument("--components", type=int, default=30)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--changes-per-day", type=int, default=12, help="status changes per component per day")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)
    if args.components < 1 or args.rounds < 1 or args.changes_per_day < 1 or args.groups < 0:
        parser.error("--components, --rounds and --changes-per-day must be positive")

    import psycopg

    lock = open(LOCK_PATH, "w")  # one benchmark at a time on this machine: wait for the other one
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another benchmark on this machine to finish (lock {LOCK_PATH})…", file=sys.stderr)
        fcntl.flock(lock, fcntl.LOCK_EX)
    dsn = args.pg_admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"
    os.environ.update({
        "DATABASE_URL": "postgresql+psycopg://" + dsn.split("://", 1)[1], "REDIS_URL": "",
        "SECRET_KEY": secrets.token_urlsafe(32), "INSTANCE_PATH": str(ROOT / "bench" / "out" / "instance-uptime"),
        "SITE_URL": "https://status.example.com", "LOG_LEVEL": "WARNING", "FLASK_DEBUG": "0",
        "RATELIMIT_STORAGE_URI": "memory://",
    })
    with psycopg.connect(args.pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    try:
        from flask_migrate import upgrade
        from sqlalchemy import update

        from statuspage import create_app
        from statuspage.extensions import db
        from statuspage.models import Component
        from statuspage.uptime import build_uptime

        app = create_app({"TESTING": True, "JOBS_EAGER": True})
        with app.app_context():
            log = io.StringIO()
            try:
                with contextlib.redirect_stderr(log):
                    upgrade()
            except Exception:
                sys.stderr.write(log.getvalue())
                raise
            db.session.remove()
        rows = load_history(dsn, args.components, args.changes_per_day, args.groups)
        client = app.test_client()

        def showcase(value: bool) -> None:
            with app.app_context():
                db.session.execute(update(Component).values(showcase=value))
                db.session.commit()

        def page() -> None:
            r = client.get("/")
            assert r.status_code == 200, r.status_code

        def uptime_json() -> None:
            assert client.get("/api/v2/uptime.json").status_code == 200

        def build() -> None:
            with app.app_context():
                build_uptime()
                db.session.remove()

        for fn in (page, uptime_json, build):  # warm up
            fn()
        results: dict[str, list[float]] = {"baseline": [], "subject": [], "uptime_json": [], "build_uptime": []}
        for _ in range(args.rounds):
            showcase(False)
            results["baseline"].append(timed(page))
            showcase(True)
            results["subject"].append(timed(page))
            results["uptime_json"].append(timed(uptime_json))
            results["build_uptime"].append(timed(build))
        size = len(client.get("/").data)
        medians = {k: round(statistics.median(v), 2) for k, v in results.items()}
        print(f"{args.components} components in {args.groups} groups, {rows} history rows in 95 days, "
              f"{args.rounds} interleaved rounds (medians):")
        print(f"  GET /  without bars: {medians['baseline']} ms    with bars: {medians['subject']} ms "
              f"(x{medians['subject'] / medians['baseline']:.2f}), page {size // 1024} KB")
        print(f"  GET /api/v2/uptime.json: {medians['uptime_json']} ms    build_uptime(): {medians['build_uptime']} ms")
        timings = {f"{k}_ms": v for k, v in medians.items()}
        print(json.dumps({"components": args.components, "history_rows": rows, **timings,
                          "ratio": round(medians["subject"] / medians["baseline"], 2), "page_bytes": size}))
    finally:
        with psycopg.connect(args.pg_admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
