"""deploy/gunicorn.conf.py keeps answering while slow clients trickle their headers.

A real gunicorn with the shipped config and 2 workers (as in the finding that four slow clients
stalled ``gunicorn -w 2`` sync workers for 45 s), eight real slow clients on sockets sending one
header line per second, and ordinary requests made meanwhile. The same scenario against sync
workers shows what the config prevents: there the ordinary requests wait for the slow ones.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
SLOW_CLIENTS = 8
SLOW_LINES = 5  # one per second after the request line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "GUNICORN_", "PUBLIC_"))}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'gunicorn.db'}", "SECRET_KEY": TEST_SECRET,
                "INSTANCE_PATH": str(tmp_path / "instance"), "REDIS_URL": "", "RATELIMIT_STORAGE_URI": "memory://",
                "LOG_LEVEL": "WARNING", "PUBLIC_SNAPSHOT_DIR": "off"})
    return env


def start_gunicorn(env: dict[str, str], port: int, *args: str, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
                             "-b", f"127.0.0.1:{port}", *args, "app:app"], cwd=ROOT, env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/status.json", timeout=5) as r:
                if r.status == 200:
                    return proc
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:]) from None
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def slow_client(port: int, finished: list[float]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(b"GET /api/v2/status.json HTTP/1.1\r\nHost: localhost\r\n")
        for n in range(SLOW_LINES):
            time.sleep(1)
            sock.sendall(f"X-Slow-{n}: {n}\r\n".encode())
        finished.append(time.monotonic())
        sock.sendall(b"Connection: close\r\n\r\n")
        while sock.recv(65536):
            pass


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("gunicorn")
    env = app_env(tmp)
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "app", "db", "upgrade"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return env


@pytest.mark.parametrize("worker", ["shipped config", "sync control"])
def test_slow_clients_do_not_stall_the_shipped_gunicorn_config(migrated, tmp_path, worker):
    port = free_port()
    extra = ["-w", "2"] + (["-k", "sync", "--threads", "1"] if worker == "sync control" else [])
    proc = start_gunicorn(migrated, port, *extra, log=tmp_path / "gunicorn.log")
    try:
        finished: list[float] = []
        slow = [threading.Thread(target=slow_client, args=(port, finished), daemon=True) for _ in range(SLOW_CLIENTS)]
        for t in slow:
            t.start()
        time.sleep(0.5)  # every slow client has connected and sent its request line
        answered = []
        for _ in range(5):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/status.json", timeout=60) as r:
                assert r.status == 200
            answered.append(time.monotonic())
        for t in slow:
            t.join(timeout=60)
        assert len(finished) == SLOW_CLIENTS
        if worker == "shipped config":
            # Every ordinary request was answered while all the slow clients were still sending.
            assert max(answered) < min(finished)
        else:
            # The control: sync workers make them wait until slow clients are done.
            assert min(answered) > min(finished)
    finally:
        stop(proc)
