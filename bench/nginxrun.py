"""Run Debian's nginx without root for tests and benchmarks: the shipped deploy/nginx.conf with its
three marked lines (upstream, root, listen) pointed at local processes, inside a main config that
keeps the pid file, logs and temp directories in a directory of our own."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "deploy" / "nginx.conf"


def main_config(tmp: Path, server: str, workers: int = 1) -> Path:
    # As root, nginx's workers would switch to "nobody", who cannot read a private temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp / "site.conf").write_text(server)
    path = tmp / "nginx.conf"
    path.write_text(f"""{user}worker_processes {workers};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
""")
    return path


def front_site(snapshot: Path, listen: int, upstream: int) -> str:
    """deploy/nginx.conf as shipped, pointed at this machine's snapshot and gunicorn."""
    site = SHIPPED.read_text()
    for old, new in (("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream};"),
                     ("root /srv/statuspage/instance/public;", f"root {snapshot};"),
                     ("listen 80;", f"listen 127.0.0.1:{listen};"), ("listen [::]:80;", "")):
        if old not in site:
            raise RuntimeError(f"deploy/nginx.conf no longer has the line {old!r}")
        site = site.replace(old, new)
    return site


def static_site(snapshot: Path, listen: int) -> str:
    """The limit: nginx handing out the same files, nothing else."""
    return f"""server {{
    listen 127.0.0.1:{listen};
    root {snapshot};
    location / {{ try_files $uri $uri/index.html =404; }}
}}
"""


class Nginx:
    def __init__(self, tmp: Path, server: str, workers: int = 1) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        config = main_config(tmp, server, workers)
        self.proc = subprocess.Popen(["nginx", "-c", str(config), "-p", str(tmp), "-e", str(tmp / "nginx-error.log")],
                                     stdout=subprocess.DEVNULL, stderr=(tmp / "nginx.out").open("wb"),
                                     start_new_session=True)

    def wait(self, port: int, timeout: float = 30) -> Nginx:
        import socket

        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start: " + (self.tmp / "nginx.out").read_text()
                                       + (self.tmp / "nginx-error.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
