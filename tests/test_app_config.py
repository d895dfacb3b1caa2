"""Configuration rules: production refuses to start without SECRET_KEY; security headers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(env_extra: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "FLASK_DEBUG")}
    env.update({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **env_extra})
    code = "from statuspage import create_app; create_app(); print('started')"
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=60)


def test_production_refuses_to_start_without_secret_key(tmp_path):
    result = _run({}, tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_production_starts_with_secret_key_and_debug_generates_one(tmp_path):
    assert "started" in _run({"SECRET_KEY": "x" * 40}, tmp_path).stdout
    assert "started" in _run({"FLASK_DEBUG": "1"}, tmp_path).stdout
    assert (tmp_path / "dev-secret-key").exists()


def test_security_headers_and_service_worker_headers(client):
    r = client.get("/")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "worker-src 'self'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    sw = client.get("/sw-push.js")
    assert sw.status_code == 200 and sw.headers["Service-Worker-Allowed"] == "/"
    assert "no-cache" in sw.headers["Cache-Control"] and "javascript" in sw.headers["Content-Type"]
    manifest = client.get("/manifest.webmanifest")
    assert manifest.json["name"] == "Example Status" and manifest.json["display"] == "standalone"
