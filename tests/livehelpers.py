"""Live servers for the concurrency and cookie tests: the test app served by werkzeug's threaded
server in this process, or the real app served by gunicorn (several worker processes) against the
test's database. Requests go over real sockets, with real cookies (`requests.Session`)."""
from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


class LiveServer:
    """`app` served on a free loopback port by werkzeug's threaded server (one thread per request)."""

    def __init__(self, app) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Gunicorn:
    """The real app (`app:app`) under gunicorn with `workers` processes, bound to a socket this
    test opened (fd://, so no port race), configured through the environment like production."""

    def __init__(self, database_url: str, tmp_path: Path, *, workers: int = 4, **env: Any) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.log = tmp_path / f"gunicorn-{secrets.token_hex(3)}.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PUSH_", "RATELIMIT_", "FLASK_"))}
        base.update({
            "DATABASE_URL": database_url, "SECRET_KEY": "test-secret-key-not-for-production",
            "SITE_URL": self.url, "REDIS_URL": "", "RATELIMIT_ENABLED": "0", "LOG_LEVEL": "WARNING",
            "INSTANCE_PATH": str(tmp_path / "gunicorn-instance"), "PYTHONUNBUFFERED": "1",
        })
        base.update({k: str(v) for k, v in env.items()})
        fd = self.sock.fileno()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "--bind", f"fd://{fd}", "--timeout", "60",
             "--graceful-timeout", "5", "--no-control-socket", "app:app"],
            cwd=ROOT, env=base, pass_fds=(fd,), stdout=self.log.open("ab"), stderr=subprocess.STDOUT)

    def __enter__(self) -> Gunicorn:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "/api/v2/status.json", timeout=30).status_code == 200:
                    return self
            except requests.RequestException:  # not listening yet, or a worker still booting
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sock.close()

    def errors(self) -> str:
        """Tracebacks gunicorn's workers logged (a 500 leaves one)."""
        text = self.log.read_text()
        return text if "Traceback" in text else ""


def csrf_token(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=10).text
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(base_url: str, email: str, password: str = PASSWORD, *, remember: bool = False,
            user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36") -> requests.Session:
    """A browser signing in through the real login form; returns it with its cookies."""
    browser = requests.Session()
    browser.headers["User-Agent"] = user_agent
    token = csrf_token(browser, base_url + "/admin/login")
    data = {"email": email, "password": password, "csrf_token": token}
    if remember:
        data["remember"] = "1"
    response = browser.post(base_url + "/admin/login", data=data, allow_redirects=False, timeout=10)
    assert response.status_code == 302, (response.status_code, response.text[:500])
    return browser


def signed_in_as(browser: requests.Session, base_url: str) -> str | None:
    """Whom the admin UI thinks this browser is (None when it is sent to the login page)."""
    response = browser.get(base_url + "/admin/", allow_redirects=False, timeout=10)
    if response.status_code in (302, 303):
        assert "/admin/login" in response.headers["Location"]
        return None
    assert response.status_code == 200, response.status_code
    return re.search(r"Signed in as (\S+)\. Times in", response.text).group(1)


def copy_of(browser: requests.Session, *names: str) -> requests.Session:
    """A different browser holding copies of (some of) this browser's cookies."""
    thief = requests.Session()
    for cookie in browser.cookies:
        if not names or cookie.name in names:
            thief.cookies.set(cookie.name, cookie.value, domain=cookie.domain, path=cookie.path)
    return thief
