"""The operator's command line: `flask --app app vapid|push|users|tokens|worker ...`, through
Flask's CLI runner, and once through the real `flask` executable against a migrated database."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from statuspage.extensions import db
from statuspage.models import Subscription, VapidKey
from statuspage.push.crypto import b64url_decode
from tests.push import helpers as ph

ROOT = Path(__file__).resolve().parents[2]


def invoke(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def _statuses(app) -> dict[int, tuple[str, str | None]]:
    with app.app_context():
        return {s.id: (s.status, s.status_reason) for s in db.session.execute(select(Subscription)).scalars()}


# --- vapid ------------------------------------------------------------------------------------------

def test_vapid_generate_stores_encrypted_key_and_refuses_to_overwrite(app):
    result = invoke(app, "vapid", "generate", "--subject", "mailto:ops@example.com")
    assert result.exit_code == 0, result.output
    public_key = result.stdout.strip().splitlines()[-1]
    assert len(b64url_decode(public_key)) == 65

    with app.app_context():
        [row] = db.session.execute(select(VapidKey)).scalars()
        assert (row.public_key, row.subject, row.active) == (public_key, "mailto:ops@example.com", True)
        from statuspage.push.keys import current_keys

        private = current_keys().private_key
        assert private not in row.private_key_encrypted  # encrypted at rest

    result = invoke(app, "vapid", "generate")
    assert result.exit_code != 0
    assert "already exist" in result.output and "--force" in result.output
    assert invoke(app, "vapid", "show").stdout.strip() == public_key  # unchanged


def test_vapid_generate_force_expires_every_subscription(app, client):
    public_key = ph.generate_keys(app)
    ids = [client.post("/api/push/subscriptions", json=ph.browser_subscription()).json["id"] for _ in range(2)]
    result = invoke(app, "vapid", "generate", "--force")
    assert result.exit_code == 0, result.output
    assert "Marked 2 subscription(s) expired (reason: key rotated)" in result.stdout
    new_key = result.stdout.strip().splitlines()[-1]
    assert new_key != public_key
    assert _statuses(app) == {i: ("expired", "key rotated") for i in ids}
    assert invoke(app, "vapid", "show").stdout.strip() == new_key
    assert client.get("/api/push/public-key").json == {"publicKey": new_key}
    with app.app_context():
        assert [k.active for k in db.session.execute(select(VapidKey).order_by(VapidKey.id)).scalars()] == [
            False, True]


def test_vapid_show_and_bad_subject(app):
    result = invoke(app, "vapid", "show")
    assert result.exit_code != 0 and "no VAPID keys yet" in result.output
    result = invoke(app, "vapid", "generate", "--subject", "ops@example.com")
    assert result.exit_code != 0 and "mailto:" in result.output
    public_key = ph.generate_keys(app)
    result = invoke(app, "vapid", "show")
    assert result.exit_code == 0 and result.stdout.strip() == public_key


def test_vapid_show_explains_a_changed_secret_key(tmp_path, pg_database):
    app = ph.build_app("sqlite", tmp_path, pg_database, None)
    try:
        ph.generate_keys(app)
        app.config["SECRET_KEY"] = "a-different-secret"
        result = invoke(app, "vapid", "show")
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # a message, not a traceback
        assert "SECRET_KEY changed" in result.output
        result = invoke(app, "push", "test", "--all")
        assert result.exit_code != 0 and "SECRET_KEY changed" in result.output
    finally:
        ph.dispose(app)


# --- push test --------------------------------------------------------------------------------------

def test_push_test_fails_loudly_without_keys_or_subscriptions(eager_app, sim):
    result = invoke(eager_app, "push", "test", "--all")
    assert result.exit_code != 0 and "no VAPID keys" in result.output
    ph.generate_keys(eager_app)
    result = invoke(eager_app, "push", "test", "--all")
    assert result.exit_code != 0 and "no active subscriptions" in result.output
    result = invoke(eager_app, "push", "test")
    assert result.exit_code != 0 and "--subscription ID or --all" in result.output
    result = invoke(eager_app, "push", "test", "--subscription", "42")
    assert result.exit_code != 0 and "no active subscription 42" in result.output
    assert sim.attempts() == []


def test_push_test_all_sends_and_prints_each_outcome(eager_app, sim):
    public_key = ph.generate_keys(eager_app)
    client = eager_app.test_client()
    ok, ok_id = ph.subscribe(client, sim, public_key)
    gone, gone_id = ph.subscribe(client, sim, public_key)
    sim.expire(gone.token)

    result = invoke(eager_app, "push", "test", "--all", "--title", "Hello", "--body", "Is this thing on?")
    assert result.exit_code == 2  # something was not sent
    lines = result.stdout.strip().splitlines()
    assert lines == [f"subscription {ok_id}: sent 201", f"subscription {gone_id}: expired 410 (410 Gone)",
                     "1 sent, 1 not sent"]
    [message] = sim.received(ok.token)
    assert (message.payload["title"], message.payload["body"], message.payload["event"]) == (
        "Hello", "Is this thing on?", "test")
    assert message.claims["aud"] == sim.origin
    assert _statuses(eager_app)[gone_id] == ("expired", "push service answered 410")

    # Now only the live one is left: exit 0, default texts.
    result = invoke(eager_app, "push", "test", "--subscription", str(ok_id))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines() == [f"subscription {ok_id}: sent 201", "1 sent, 0 not sent"]
    assert sim.received(ok.token)[-1].payload["title"] == "Example Status: test notification"


# --- users and tokens ---------------------------------------------------------------------------------

def test_users_and_tokens(app, client):
    result = invoke(app, "users", "create", "--email", "ops@example.com", "--password", "a long password 1")
    assert result.exit_code == 0 and "Created admin ops@example.com" in result.output
    result = invoke(app, "users", "create", "--email", "ops@example.com", "--password", "a long password 1")
    assert result.exit_code != 0

    result = invoke(app, "tokens", "create", "--email", "ops@example.com", "--name", "deploy script")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/subscriptions", headers=headers).status_code == 200
    r = client.post("/api/v1/incidents", json={"name": "From a script", "notify": False}, headers=headers)
    assert r.status_code == 201

    result = invoke(app, "tokens", "create", "--email", "nobody@example.com")
    assert result.exit_code != 0

    result = invoke(app, "tokens", "revoke", "--prefix", token[:10])
    assert result.exit_code == 0 and "Revoked 1" in result.output
    assert client.get("/api/v1/subscriptions", headers=headers).status_code == 401


def test_worker_needs_redis(app):
    result = invoke(app, "worker", "--burst")
    assert result.exit_code != 0 and "REDIS_URL is not set" in result.output


# --- the real executable ------------------------------------------------------------------------------

def test_real_flask_command_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAPID_", "PUSH_", "REDIS", "DATABASE"))}
    env.update(SECRET_KEY="cli-test-secret", DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}",
               INSTANCE_PATH=str(tmp_path / "instance"), SITE_URL="https://status.example.com",
               LOG_LEVEL="WARNING")

    def flask(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    assert flask("db", "upgrade").returncode == 0
    generated = flask("vapid", "generate")
    assert generated.returncode == 0, generated.stderr
    public_key = generated.stdout.strip().splitlines()[-1]
    shown = flask("vapid", "show")
    assert (shown.returncode, shown.stdout.strip()) == (0, public_key)
    again = flask("vapid", "generate")
    assert again.returncode != 0 and "--force" in again.stderr
    no_subs = flask("push", "test", "--all")
    assert no_subs.returncode != 0 and "no active subscriptions" in no_subs.stderr
