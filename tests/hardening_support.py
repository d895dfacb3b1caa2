"""Helpers for the hardening tests (test_security_*.py, test_faults.py, test_fuzz.py).

- `table_snapshot(app)`: every row of every table, to prove a rejected request changed nothing;
- `ConnectionRecorder`: a real listening socket that counts who connects to it, to prove that
  an endpoint the allow-list refuses is never contacted;
- `Redirector`: a tiny HTTP server that answers every POST with a redirect;
- `with_keys(app)` / `sim_subscription(app, sim)`: VAPID keys and a simulator-backed
  `PushSubscription.toJSON()` body.
"""
from __future__ import annotations

import http.server
import socket
import subprocess
import threading
import time
from typing import Any

from sqlalchemy import select

from statuspage.extensions import db

# Columns that legitimately move on a read-only request (token use is recorded, throttled).
VOLATILE_COLUMNS = {("api_tokens", "last_used_at")}


def table_snapshot(app) -> dict[str, list[tuple]]:
    """All rows of all tables (sorted), minus the columns in VOLATILE_COLUMNS."""
    snapshot: dict[str, list[tuple]] = {}
    with app.app_context():
        for table in db.metadata.sorted_tables:
            cols = [c for c in table.columns if (table.name, c.name) not in VOLATILE_COLUMNS]
            rows = db.session.execute(select(*cols)).all()
            snapshot[table.name] = sorted(tuple(repr(v) for v in row) for row in rows)
        db.session.remove()
    return snapshot


def with_keys(app) -> str:
    """Generate VAPID keys (once) and return the public key."""
    from statuspage.push.keys import generate_keys, stored_key

    with app.app_context():
        row = stored_key()
        if row is None:
            row, _ = generate_keys(subject="mailto:ops@example.com")
            db.session.commit()
        public = row.public_key
        db.session.remove()
    return public


def sim_subscription(app, sim) -> dict[str, Any]:
    """A fresh simulator subscription bound to the app's VAPID key, as the browser would POST it."""
    return sim.new_subscription(with_keys(app)).to_json()


class ConnectionRecorder:
    """Listens on 127.0.0.1:<random port> and records every connection (then closes it)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections: list[tuple[str, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="connection-recorder", daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(addr)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> ConnectionRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Redirector:
    """An HTTP server whose every POST is answered `status` + Location: `target`."""

    def __init__(self, status: int, target: str) -> None:
        owner = self
        self.requests: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                owner.requests.append(self.path)
                self.send_response(status)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="redirector", daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Redirector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PrivateRedis:
    """A redis-server of the test's own on a free port, which the test may stop and start again
    (the shared Redis other tests use is never touched)."""

    def __init__(self, tmp_dir) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.dir = str(tmp_dir)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        from redis import Redis

        deadline = time.monotonic() + 20
        while True:
            try:
                Redis(port=self.port, socket_connect_timeout=0.5).ping()
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
