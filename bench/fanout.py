"""Fan-out benchmark: the project's real delivery path against naive pywebpush, in one run.

    make bench                                  # 50,000 subscribers, no added latency
    make bench BENCH_ARGS="--subscribers 100000 --latency-ms 20"

What it does, on this machine only (nothing leaves 127.0.0.1):

1. Starts ``bench/mockpush.py``, a lean HTTPS push service in its own process(es): self-signed
   certificate, keep-alive, optional latency per request, answers 201 after checking the Web
   Push headers. (Full decryption and VAPID verification of the same send path is the job of
   ``tests/push/test_fast_path.py`` with the project's simulator.)
2. Creates a PostgreSQL database of its own (``statuspage_bench``; dropped at the end), runs the
   migrations, and bulk-loads N subscriptions whose p256dh/auth are real P-256 public keys and
   random auth secrets (generated once and cached in ``bench/out/``), all pointing at the mock.
3. Baseline: ``pywebpush.webpush()`` in a loop over a sample of those subscriptions — a new TLS
   connection, a new VAPID signature and one encryption per message, as most tutorials do it.
4. The real path: starts ``--workers`` ``flask --app app worker`` processes (RQ, Redis db 15,
   flushed), records an incident through ``statuspage.incidents.create_incident`` +
   ``events.commit()`` (the outbox row, then the fan_out job), and measures from that commit to
   the event's last outcome written (``events.finished_at``): fan-out job, batch jobs claiming
   Delivery rows, encryption, sends, outcome writes.

The last stdout line is JSON:
``{"subscribers": N, "msgs_per_s": X, "baseline_msgs_per_s": Y, "ratio": X/Y, ...}``.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import io
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

DB_NAME = "statuspage_bench"
LOCK_PATH = "/tmp/statuspage-bench.lock"
SUBJECT = "mailto:bench@example.com"
KEY_RECORD = 65 + 16  # p256dh point + auth secret


def log(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- fixtures


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA certificate for 127.0.0.1/localhost (cached in bench/out/tls)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
            return cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-push.localhost")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, crl_sign=False, encipher_only=False,
            decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def subscriber_keys(n: int) -> bytes:
    """n records of (65-byte P-256 public point, 16-byte auth), cached in bench/out/keys.bin.

    Each point is the public half of a freshly generated private key, as a browser would make;
    the private halves are not kept because the mock service does not decrypt.
    """
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    path = OUT / "keys.bin"
    data = path.read_bytes() if path.exists() else b""
    data = data[:len(data) - len(data) % KEY_RECORD]
    have = len(data) // KEY_RECORD
    if have < n:
        log(f"generating {n - have} P-256 subscriber keys (cached in {path.relative_to(ROOT)})...")
        curve = ec.SECP256R1()
        extra = bytearray()
        for _ in range(n - have):
            point = ec.generate_private_key(curve).public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint)
            extra += point + os.urandom(16)
        data += bytes(extra)
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data[:n * KEY_RECORD]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def b64url(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --------------------------------------------------------------------------- processes


class MockService:
    def __init__(self, port: int, cert: Path, key: Path, latency_ms: float, procs: int) -> None:
        self.procs: list[subprocess.Popen] = []
        for _ in range(procs):
            proc = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "mockpush.py"), "--port", str(port), "--cert", str(cert),
                 "--key", str(key), "--latency-ms", str(latency_ms)],
                stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
        for proc in self.procs:
            line = proc.stdout.readline().strip()
            if line != "ready":
                self.stop()
                raise RuntimeError(f"mock push service did not start: {line!r}")

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                out, _ = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            for line in (out or "").splitlines():
                if line.startswith("{"):
                    for k, v in json.loads(line).items():
                        totals[k] = totals.get(k, 0) + v
        self.procs = []
        return totals


def _proc_status(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
    except OSError:
        pass
    return 0


def postgres_cpu() -> float:
    """CPU seconds used so far by every PostgreSQL process on this machine (server-wide: other
    databases' work counts too, so this is an upper bound for the benchmark's share)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    total += _cpu_seconds(int(entry.name))
            except OSError:
                continue
    return total


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


# --------------------------------------------------------------------------- phases


def setup_database(admin_url: str, url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def load_subscriptions(dsn: str, keys: bytes, n: int, origin: str) -> list[dict]:
    """COPY n subscriptions into the database; returns the first few as pywebpush dicts."""
    import psycopg

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    sample = []
    run = secrets.token_hex(4)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy("COPY subscriptions (endpoint, p256dh, auth, all_components, browser, status, "
                      "created_at, updated_at) FROM STDIN") as copy:
            for i in range(n):
                rec = keys[i * KEY_RECORD:(i + 1) * KEY_RECORD]
                endpoint = f"{origin}/push/{run}-{i}"
                p256dh, auth = b64url(rec[:65]), b64url(rec[65:])
                copy.write_row((endpoint, p256dh, auth, True, "Chrome", "active", now, now))
                if i < 2000:
                    sample.append({"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}})
        conn.commit()
        conn.execute("ANALYZE subscriptions")
        conn.commit()
    return sample


def run_baseline(sample: list[dict], payload: str, private_key: str, cert: Path) -> dict:
    """Naive pywebpush: webpush() per message (new session, TLS handshake and VAPID JWT each)."""
    from pywebpush import webpush

    os.environ["REQUESTS_CA_BUNDLE"] = str(cert)  # trust the mock's certificate (requests reads it)
    ok = 0
    t0 = time.perf_counter()
    for info in sample:
        response = webpush(info, data=payload, vapid_private_key=private_key,
                           vapid_claims={"sub": SUBJECT}, ttl=86400, timeout=10)
        ok += response.status_code == 201
    elapsed = time.perf_counter() - t0
    return {"messages": len(sample), "created": ok, "seconds": elapsed, "msgs_per_s": ok / elapsed}


def start_workers(count: int, env: dict[str, str], profile: str | None = None) -> list[subprocess.Popen]:
    workers = []
    for i in range(count):
        command = [sys.executable, "-m", "flask", "--app", "app", "worker"]
        if profile:  # py-spy (pip install py-spy) samples the worker; raw folded stacks in bench/out/
            command = [profile, "record", "--rate", "250", "--format", "raw", "--subprocesses", "--output",
                       str(OUT / f"worker-{i}.folded"), "--", *command]
        # A process group of its own: RQ forks a scheduler process per worker, which can outlive
        # a worker that is stopped mid-job; stop_workers() ends the whole group.
        workers.append(subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                        start_new_session=True))
    return workers


def wait_for_workers(redis_url: str, queue: str, workers: list[subprocess.Popen], timeout: float = 60) -> None:
    from redis import Redis
    from rq import Queue, Worker

    conn = Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(w.poll() is not None for w in workers):
            raise RuntimeError("a worker exited during start-up (see its output above)")
        ready = [w for w in Worker.all(queue=Queue(queue, connection=conn)) if w.state == "idle"]
        if len(ready) >= len(workers):
            return
        time.sleep(0.1)
    raise RuntimeError("workers did not register with Redis in time")


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def worker_pid(proc: subprocess.Popen) -> int:
    """The RQ worker's pid (the child when the worker runs under py-spy)."""
    kids = _children(proc.pid)
    return kids[0] if kids and Path(f"/proc/{proc.pid}/exe").resolve().name == "py-spy" else proc.pid


def job_timeline(redis_url: str, queue: str, start_wall: float) -> list[str]:
    """When each finished RQ job started and ended, relative to the commit (for --timeline)."""
    from redis import Redis
    from rq import Queue
    from rq.job import Job

    conn = Redis.from_url(redis_url)
    q = Queue(queue, connection=conn)
    ids = q.finished_job_registry.get_job_ids() + q.failed_job_registry.get_job_ids()
    rows = []
    for job in Job.fetch_many(ids, connection=conn):
        if job is None or job.started_at is None or job.ended_at is None:
            continue
        start = job.started_at.replace(tzinfo=dt.UTC).timestamp() - start_wall
        end = job.ended_at.replace(tzinfo=dt.UTC).timestamp() - start_wall
        name = job.func_name.rsplit(".", 1)[-1]
        rows.append((start, f"  {start:7.3f} -> {end:7.3f}s  {name}{tuple(job.args[:3])}  {job.worker_name or ''}"))
    return [line for _, line in sorted(rows)]


def stop_workers(workers: list[subprocess.Popen]) -> None:
    for w in workers:
        if w.poll() is None:
            for pid in {worker_pid(w), w.pid}:  # RQ warm shutdown (py-spy then writes its profile)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)
    for w in workers:
        try:
            w.wait(timeout=15)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(w.pid, signal.SIGKILL)  # whatever is left of its group (RQ's scheduler)


def queue_report() -> str:
    """Where the jobs are (for a fan-out that stops making progress)."""
    from flask import current_app
    from rq.registry import FailedJobRegistry, ScheduledJobRegistry, StartedJobRegistry

    from statuspage.jobs import rq_queue

    q = rq_queue(current_app)
    return (f"queued {q.count}, started {StartedJobRegistry(queue=q).get_job_ids()}, "
            f"scheduled {len(ScheduledJobRegistry(queue=q))}, failed {FailedJobRegistry(queue=q).get_job_ids()}")


def run_fanout(app, n: int, workers: list[subprocess.Popen], timeout: float) -> dict:
    from sqlalchemy import select

    from statuspage import events
    from statuspage.extensions import db
    from statuspage.incidents import create_incident
    from statuspage.models import FINAL_EVENT_STATES, Event

    with app.app_context():
        incident = create_incident({"name": "Elevated API error rates", "status": "investigating",
                                    "impact": "major", "body": "We are investigating elevated error rates "
                                    "on the API and dashboard. Next update in 30 minutes."})
        db.session.flush()
        event = db.session.execute(select(Event).where(Event.incident_id == incident.id)).scalar_one()
        event_id = event.id
        pids = [worker_pid(w) for w in workers]
        cpu0 = [_cpu_seconds(pid) for pid in pids]
        pg_cpu0 = postgres_cpu()
        start_wall = time.time()
        start = time.perf_counter()
        events.commit()  # the outbox row commits, then fan_out goes to the RQ queue
        peak_rss = [0] * len(workers)
        last_print = last_change = start
        last_sent = 0
        deadline = start + timeout
        while True:
            db.session.remove()
            row = db.session.execute(
                select(Event.state, Event.queued_count, Event.sent_count, Event.expired_count, Event.failed_count,
                       Event.finished_at).where(Event.id == event_id)).one()
            state, queued, sent, expired, failed, finished_at = row
            now = time.perf_counter()
            peak_rss = [max(p, _proc_status(pid, "VmHWM")) for p, pid in zip(peak_rss, pids, strict=True)]
            if state in FINAL_EVENT_STATES or sent + expired + failed >= n:
                break
            if now > deadline:
                raise RuntimeError(f"fan-out did not finish in {timeout:g}s: {row}")
            if now - last_print >= 2:
                log(f"  ... {sent:,} sent after {now - start:.1f}s")
                last_print = now
                if sent == last_sent and now - last_change > 20:
                    log(f"  !!! no progress for {now - last_change:.0f}s: event {row}; {queue_report()}")
            if sent != last_sent:
                last_sent, last_change = sent, now
            time.sleep(0.02)
        polled = time.perf_counter() - start
        if finished_at is not None:
            elapsed = (finished_at.replace(tzinfo=dt.UTC).timestamp() - start_wall)
        else:
            elapsed = polled
        payload = None
        from statuspage.push.delivery import _prepare

        db.session.remove()
        payload = _prepare(db.session.get(Event, event_id)).payload_for("")
        cpu = [_cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
        pg_cpu = postgres_cpu() - pg_cpu0
        db.session.remove()
    return {"event_id": event_id, "start_wall": start_wall, "state": state, "queued": queued, "sent": sent,
            "expired": expired,
            "failed": failed, "seconds": elapsed, "polled_seconds": polled, "msgs_per_s": sent / elapsed,
            "worker_peak_rss_mb": [round(p / 1024, 1) for p in peak_rss],
            "worker_cpu_seconds": [round(c, 2) for c in cpu], "postgres_cpu_seconds": round(pg_cpu, 2),
            "payload": payload}


# --------------------------------------------------------------------------- main


def bench_lock() -> int:
    """One benchmark at a time on this machine: a second would share the cores (both sets of
    numbers wrong) and the database and Redis db this one drops and flushes.

    Run as ``flock /tmp/statuspage-bench.lock make bench``, the lock is already held through a
    descriptor this process inherited: take that one (a second open() of the file would be
    refused by flock's own lock). Otherwise lock the file here, waiting for a running benchmark.
    """
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError, ValueError):
            if os.readlink(f"/proc/self/fd/{name}") == LOCK_PATH:
                fcntl.flock(int(name), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return int(name)
    fd = os.open(LOCK_PATH, os.O_WRONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another benchmark is running on this machine (lock {LOCK_PATH}); waiting for it...")
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fan-out throughput vs naive pywebpush.")
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added per request by the mock service")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="worker processes (default: cores)")
    parser.add_argument("--baseline-sample", type=int, default=300, help="messages sent with naive pywebpush")
    parser.add_argument("--batch-size", type=int, default=None, help="PUSH_BATCH_SIZE (default: the app's)")
    parser.add_argument("--concurrency", type=int, default=None, help="PUSH_CONCURRENCY (default: the app's)")
    parser.add_argument("--mock-procs", type=int, default=1, help="mock push service processes (SO_REUSEPORT)")
    parser.add_argument("--timeout", type=float, default=600, help="give up on the fan-out after this many s")
    parser.add_argument("--profile", metavar="PY_SPY", help="path to py-spy: profile the workers")
    parser.add_argument("--timeline", action="store_true", help="print when each RQ job ran")
    parser.add_argument("--keep-db", action="store_true", help=f"leave the {DB_NAME} database for inspection")
    parser.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL",
                                                                 "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
                        help="a Redis db for the benchmark alone: it is FLUSHED before and after the run "
                             "(the test suite uses dbs 12 and 13)")
    args = parser.parse_args(argv)
    n = args.subscribers
    if n < 1 or args.workers < 1 or args.baseline_sample < 1:
        parser.error("--subscribers, --workers and --baseline-sample must be positive")

    from redis import Redis

    from statuspage.push.crypto import generate_vapid_keypair

    lock = bench_lock()  # noqa: F841  (held until the process exits)
    OUT.mkdir(parents=True, exist_ok=True)
    cert, key = make_certificate(OUT / "tls")
    keys = subscriber_keys(n)
    port = free_port()
    origin = f"https://127.0.0.1:{port}"
    private_key, public_key = generate_vapid_keypair()
    dsn = args.pg_admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql+psycopg://" + dsn.split("://", 1)[1],
        "REDIS_URL": args.redis_url,
        "RQ_QUEUE": "statuspage-bench",
        "SECRET_KEY": secrets.token_urlsafe(32),
        "INSTANCE_PATH": str(OUT / "instance"),
        "SITE_URL": "https://status.example.com",
        "SITE_NAME": "Example Status",
        "VAPID_PUBLIC_KEY": public_key,
        "VAPID_PRIVATE_KEY": private_key,
        "VAPID_SUBJECT": SUBJECT,
        "PUSH_EXTRA_ORIGINS": origin,
        "PUSH_CA_BUNDLE": str(cert),
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOG_LEVEL": "WARNING",
        "FLASK_DEBUG": "0",
    }
    for name, value in (("PUSH_BATCH_SIZE", args.batch_size), ("PUSH_CONCURRENCY", args.concurrency)):
        if value is not None:
            env[name] = str(value)
    os.environ.update(env)

    redis = Redis.from_url(args.redis_url)
    redis.flushdb()
    setup_database(args.pg_admin_url, dsn)
    mock: MockService | None = None
    workers: list[subprocess.Popen] = []
    try:
        from flask_migrate import upgrade

        from statuspage import create_app
        from statuspage.push.triggers import ensure_triggers

        app = create_app()
        with app.app_context():
            migration_log = io.StringIO()
            try:
                with contextlib.redirect_stderr(migration_log):  # alembic's INFO lines
                    upgrade()
            except Exception:
                sys.stderr.write(migration_log.getvalue())
                raise
            ensure_triggers()
            from statuspage.extensions import db

            db.session.commit()
            db.session.remove()
        t0 = time.perf_counter()
        sample = load_subscriptions(dsn, keys, n, origin)
        log(f"{n:,} subscriptions loaded in {time.perf_counter() - t0:.1f}s; mock push service at {origin} "
            f"(+{args.latency_ms:g} ms per request, {args.mock_procs} process(es)); {args.workers} worker(s)")
        mock = MockService(port, cert, key, args.latency_ms, args.mock_procs)

        workers = start_workers(args.workers, env, args.profile)
        wait_for_workers(args.redis_url, env["RQ_QUEUE"], workers)
        mock_cpu0 = mock.cpu_seconds()
        log(f"fan-out: event -> RQ -> {args.workers} worker process(es) -> {n:,} pushes -> outcomes")
        fan = run_fanout(app, n, workers, args.timeout)
        mock_cpu = mock.cpu_seconds() - mock_cpu0
        if args.timeline:
            log("\n".join(job_timeline(args.redis_url, env["RQ_QUEUE"], fan["start_wall"])))
        stop_workers(workers)
        log(f"  {fan['sent']:,} sent, {fan['expired']} expired, {fan['failed']} failed in {fan['seconds']:.2f}s "
            f"-> {fan['msgs_per_s']:,.0f} msgs/s (CPU s: workers {fan['worker_cpu_seconds']}, mock "
            f"{mock_cpu:.1f}, postgres {fan['postgres_cpu_seconds']}; worker peak RSS {fan['worker_peak_rss_mb']} MB)")

        sample = sample[:min(args.baseline_sample, len(sample))]
        log(f"baseline: pywebpush webpush() in a loop, {len(sample)} messages")
        base = run_baseline(sample, fan["payload"].decode(), private_key, cert)
        log(f"  {base['created']}/{base['messages']} created in {base['seconds']:.2f}s "
            f"-> {base['msgs_per_s']:,.0f} msgs/s")
        stats = mock.stop()
        mock = None
    finally:
        if workers:
            stop_workers(workers)
        if mock is not None:
            mock.stop()
        redis.flushdb()
        if not args.keep_db:
            try:
                from statuspage.extensions import db

                with app.app_context():
                    db.engine.dispose()
            except Exception:  # best effort before dropping the database
                pass
            drop_database(args.pg_admin_url)

    ratio = fan["msgs_per_s"] / base["msgs_per_s"] if base["msgs_per_s"] else 0.0
    log(f"ratio: {ratio:.1f}x (mock service saw {stats.get('created', 0):,} created, "
        f"{stats.get('rejected', 0)} rejected, {stats.get('connections', 0)} connections)")
    if fan["sent"] != n or stats.get("rejected"):
        log("WARNING: not every subscriber got a clean 201; see the counts above")
    result = {
        "subscribers": n,
        "msgs_per_s": round(fan["msgs_per_s"], 1),
        "baseline_msgs_per_s": round(base["msgs_per_s"], 1),
        "ratio": round(ratio, 2),
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "seconds": round(fan["seconds"], 3),
        "sent": fan["sent"],
        "failed": fan["failed"] + fan["expired"],
        "worker_peak_rss_mb": fan["worker_peak_rss_mb"],
        "worker_cpu_seconds": fan["worker_cpu_seconds"],
        "mock_cpu_seconds": round(mock_cpu, 2),
        # CPU of every process involved, per message: steadier than msgs/s on a busy machine.
        "cpu_us_per_msg": round((sum(fan["worker_cpu_seconds"]) + mock_cpu + fan["postgres_cpu_seconds"])
                                / max(fan["sent"], 1) * 1e6, 1),
        "postgres_cpu_seconds": fan["postgres_cpu_seconds"],
        "baseline_sample": base["messages"],
        "cores": os.cpu_count(),
    }
    print(json.dumps(result), flush=True)
    return 0 if fan["sent"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
