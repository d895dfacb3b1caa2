"""The shipped production front, for real: Debian's nginx with deploy/nginx.conf, gunicorn with
deploy/gunicorn.conf.py, PostgreSQL reached through a TCP relay the test can cut.

Proves that nginx serves the published snapshot with the app's own headers, that an admin's
update shows through it, and that the latest content is still served with gunicorn stopped and
with PostgreSQL unreachable (by nginx, and by the app itself, which reads the files).
"""
from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from bench.nginxrun import Nginx, front_site
from tests.conftest import PG_ADMIN_URL, TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
SAME_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options",
                "Permissions-Policy", "Cache-Control", "Access-Control-Allow-Origin", "Service-Worker-Allowed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpRelay:
    """127.0.0.1:<port> -> PostgreSQL. ``cut()`` closes the listener and every relayed connection
    (PostgreSQL is then unreachable for the app, and only for it); ``restore()`` listens again."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self.listener:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it
            except OSError:
                pass
            self.listener.close()
            self.listener = None
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.conns = []


def wait_http(port: int, path: str = "/", timeout: float = 60, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status, _, _ = get(port, path)
            if status < 500:
                return
        except OSError:
            pass
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"nothing answered on port {port}")
        time.sleep(0.2)


def get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET",
        body: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        hdrs = dict(headers or {})
        if payload is not None:
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=hdrs)
        response = conn.getresponse()
        return response.status, {k.title(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


@dataclass
class Front:
    tmp: Path
    env: dict[str, str]
    port: int
    app: int
    relay: TcpRelay
    token: str
    gunicorn: subprocess.Popen | None = None
    nginx: Nginx | None = None

    @property
    def snapshot(self) -> Path:
        return Path(self.env["PUBLIC_SNAPSHOT_DIR"])

    def start_gunicorn(self) -> None:
        log = (self.tmp / "gunicorn.log").open("ab")
        self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
             "-b", f"127.0.0.1:{self.app}", "-w", "2", "app:app"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(self.app, "/api/v2/status.json", proc=self.gunicorn)

    def stop_gunicorn(self) -> None:
        if self.gunicorn and self.gunicorn.poll() is None:
            os.killpg(self.gunicorn.pid, signal.SIGTERM)
            try:
                self.gunicorn.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.gunicorn.pid, signal.SIGKILL)
                self.gunicorn.wait()
        self.gunicorn = None

    def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        status, _, raw = get(self.port, path, {"Authorization": f"Bearer {self.token}"}, method, body)
        return status, json.loads(raw or b"null")


def flask(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def front(tmp_path_factory) -> Iterator[Front]:
    if not shutil.which("nginx"):
        pytest.skip("Debian's nginx is not installed (.ci/run installs it: apt-get install nginx)")
    tmp = tmp_path_factory.mktemp("front")
    name = f"statuspage_front_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host, port = "127.0.0.1", 5432
    relay = TcpRelay((host, port))
    user = PG_ADMIN_URL.split("://", 1)[1].split("@", 1)[0]
    nginx_port, app_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "GUNICORN_", "PUBLIC_", "PUSH_"))}
    env.update({
        "DATABASE_URL": f"postgresql+psycopg://{user}@127.0.0.1:{relay.port}/{name}",
        "SECRET_KEY": TEST_SECRET, "INSTANCE_PATH": str(tmp / "instance"), "REDIS_URL": "",
        "PUBLIC_SNAPSHOT_DIR": str(tmp / "public"), "SITE_URL": f"http://127.0.0.1:{nginx_port}",
        "SITE_NAME": "Front Status", "RATELIMIT_STORAGE_URI": "memory://", "LOG_LEVEL": "WARNING",
        "SWEEP_INTERVAL": "2", "TRUSTED_PROXIES": "1",
    })
    flask(env, "db", "upgrade")
    flask(env, "bootstrap")
    token = flask(env, "tokens", "create", "--email", "admin@example.com").strip().splitlines()[-1]
    flask(env, "publish")
    f = Front(tmp, env, nginx_port, app_port, relay, token)
    f.start_gunicorn()
    f.nginx = Nginx(tmp / "nginx", front_site(tmp / "public", nginx_port, app_port))
    try:
        f.nginx.wait(nginx_port)
        status, body = f.api("POST", "/api/v1/components", {"name": "API"})
        assert status == 201, body
        f.component = body["id"]  # type: ignore[attr-defined]
        yield f
    finally:
        f.stop_gunicorn()
        f.nginx.stop()
        relay.cut()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for(predicate, timeout: float = 15, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_nginx_serves_the_snapshot_with_the_apps_headers(front):
    wait_for(lambda: b"API" in (front.snapshot / "index.html").read_bytes(), what="the new component published")
    paths = ["/", "/history", "/feed.atom", "/api/v2/summary.json", "/api/v2/incidents/unresolved.json",
             "/sw-push.js", "/manifest.webmanifest"]
    for path in paths:
        status, via_nginx, body = get(front.port, path)
        assert status == 200, path
        file = front.snapshot / (path.lstrip("/") or "index.html")
        file = file / "index.html" if file.is_dir() else file
        assert body == file.read_bytes(), path
        _, via_app, app_body = get(front.app, path)
        assert app_body == body, path  # the app serves the same bytes
        for header in SAME_HEADERS:
            assert via_nginx.get(header) == via_app.get(header), (path, header)
        assert "Set-Cookie" not in via_nginx
    _, headers, zipped = get(front.port, "/", {"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped) == (front.snapshot / "index.html").read_bytes()
    assert get(front.port, "/sw-push.js")[1]["Service-Worker-Allowed"] == "/"
    assert get(front.port, "/manifest.webmanifest")[1]["Content-Type"].startswith("application/manifest+json")
    css = re.search(rb'href="(/static/css/style\.[0-9a-f]{10}\.css)"', get(front.port, "/")[2]).group(1).decode()
    status, headers, _ = get(front.port, css)
    assert status == 200 and headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert get(front.port, "/no/such/page")[0] == 404  # the app's own 404
    assert get(front.port, "/.build-id")[0] == 404 and get(front.port, "/.publish.lock")[0] == 404
    etag = get(front.port, "/")[1]["Etag"]
    assert get(front.port, "/", {"If-None-Match": etag})[0] == 304


def test_an_admins_update_shows_through_nginx(front):
    status, incident = front.api("POST", "/api/v1/incidents", {"name": "Checkout failing", "body": "Looking",
                                                                "components": {str(front.component): "major_outage"}})
    assert status == 201, incident
    page = f"/incidents/{incident['id']}"
    status, _ = front.api("POST", f"/api/v1/incidents/{incident['id']}/updates",
                          {"status": "identified", "body": "A bad deploy, rolling back"})
    assert status == 201
    file = front.snapshot / f"incidents/{incident['id']}/index.html"
    wait_for(lambda: file.exists() and b"A bad deploy, rolling back" in file.read_bytes(), what="the page published")
    assert get(front.port, page)[2] == file.read_bytes()  # nginx serves the published file
    wait_for(lambda: json.loads(get(front.port, "/api/v2/summary.json")[2])["status"]["indicator"] == "critical",
             what="the summary through nginx")
    front.latest = (page, b"A bad deploy, rolling back")  # type: ignore[attr-defined]


def test_latest_content_is_served_with_gunicorn_stopped_and_with_postgres_unreachable(front):
    page, latest = getattr(front, "latest", (None, None))
    if page is None:
        pytest.skip("needs test_an_admins_update_shows_through_nginx")
    front.stop_gunicorn()
    try:
        for path in ("/", page, "/api/v2/summary.json", "/feed.atom", "/sw-push.js"):
            status, _, body = get(front.port, path)
            assert status == 200, path
        assert latest in get(front.port, page)[2] and latest in get(front.port, "/")[2]
        assert get(front.port, "/admin/")[0] == 502  # only what needs the app is unavailable
    finally:
        front.start_gunicorn()
    front.relay.cut()
    try:
        for port in (front.port, front.app):  # nginx, and the app itself: it reads the files
            for path in ("/", page, "/api/v2/summary.json", "/history"):
                status, _, body = get(port, path)
                assert status == 200, (port, path)
            assert latest in get(port, page)[2]
    finally:
        front.relay.restore()
