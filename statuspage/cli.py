"""Command line: `flask --app app users|tokens|vapid|push|worker|sweep|bootstrap ...`."""
from __future__ import annotations

import secrets
import sys
import threading
import time

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import func, select

from .auth import create_token, create_user, revoke_token
from .errors import ServiceError
from .extensions import db
from .jobs import redis_connection, rq_queue
from .models import ROLES, ApiToken, User
from .push.delivery import send_test
from .push.keys import KeysUnavailable, current_keys, generate_keys, stored_key
from .push.sender import PushOutcome
from .push.subscriptions import active_subscription_ids, prune_subscriptions
from .push.triggers import ensure_triggers
from .sweeper import sweep
from .worker import AppWorker

users_cli = AppGroup("users", help="Manage admin users.")
tokens_cli = AppGroup("tokens", help="Manage API bearer tokens.")
vapid_cli = AppGroup("vapid", help="Manage the VAPID keypair used to sign pushes.")
push_cli = AppGroup("push", help="Send push notifications by hand.")


def fail(message: str, code: int = 1) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice(ROLES), default="admin", show_default=True)
def users_create(email: str, password: str, role: str) -> None:
    try:
        user = create_user(email, password, role)
        db.session.commit()
    except ServiceError as exc:
        fail(exc.message)
    click.echo(f"Created {user.role} {user.email} (id {user.id}).")


@users_cli.command("list")
def users_list() -> None:
    """id, email, role, active/disabled, open sign-ins."""
    from .auth import list_users

    for user, sessions in list_users():
        state = "active" if user.is_active else "disabled"
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{state}\t{sessions} sign-in(s)")


def _user_change(fn, *args, **kwargs):
    """Run an auth service function as the command line, commit, or exit with its message."""
    from .audit import Actor

    try:
        result = fn(*args, actor=Actor.command_line(), **kwargs)
        db.session.commit()
    except ServiceError as exc:
        db.session.rollback()
        fail(exc.message)
    return result


@users_cli.command("delete")
@click.option("--email", required=True)
def users_delete(email: str) -> None:
    """Delete a user: their sign-ins and API tokens stop working at once (never the last admin)."""
    from .auth import delete_user

    _user_change(delete_user, email)
    click.echo(f"Deleted {email}; their sign-ins and API tokens are gone.")


@users_cli.command("disable")
@click.option("--email", required=True)
def users_disable(email: str) -> None:
    """Disable a user: signed out everywhere, sign-in and API tokens refused until enabled again."""
    from .auth import set_disabled

    user = _user_change(set_disabled, email, True)
    click.echo(f"Disabled {user.email}: signed out everywhere, sign-in and API tokens refused.")


@users_cli.command("enable")
@click.option("--email", required=True)
def users_enable(email: str) -> None:
    """Enable a disabled user again (their unrevoked API tokens work again)."""
    from .auth import set_disabled

    user = _user_change(set_disabled, email, False)
    click.echo(f"Enabled {user.email}.")


@users_cli.command("set-role")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(ROLES), required=True)
def users_set_role(email: str, role: str) -> None:
    """Make a user an admin or an editor (the last active admin cannot be demoted)."""
    from .auth import set_role

    user = _user_change(set_role, email, role)
    click.echo(f"{user.email} is now {user.role}.")


@users_cli.command("set-password")
@click.option("--email", required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (asked for, twice, when not given).")
def users_set_password(email: str, password: str) -> None:
    """Set a user's password; every sign-in of theirs ends (API tokens are kept)."""
    from .auth import get_user, set_password

    try:
        user = get_user(email)
    except ServiceError as exc:
        fail(exc.message)
    ended = _user_change(set_password, user, password)
    click.echo(f"Password of {user.email} changed; {ended} sign-in(s) ended.")


@users_cli.command("sign-out-all")
@click.option("--email", help="Only this user (default: everyone).")
@click.option("--revoke-tokens", is_flag=True, help="Revoke their API tokens too.")
def users_sign_out_all(email: str | None, revoke_tokens: bool) -> None:
    """End every admin sign-in (session and remember-me cookies) at once -- e.g. after a suspected
    breach. SECRET_KEY, the VAPID key and subscribers are untouched."""
    from .auth import get_user, sign_out_everywhere

    try:
        user = get_user(email) if email else None
    except ServiceError as exc:
        fail(exc.message)
    ended, revoked = _user_change(sign_out_everywhere, user, revoke_tokens=revoke_tokens)
    click.echo(f"Ended {ended} sign-in(s)" + (f" and revoked {revoked} API token(s)" if revoke_tokens else "")
               + (f" of {email}." if email else "."))


@users_cli.command("log")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
def users_log(limit: int) -> None:
    """The admin log: who changed which user, sign-in or token, newest first."""
    from .audit import recent_entries
    from .timeutil import iso

    for entry in recent_entries(limit):
        click.echo("\t".join((iso(entry.created_at) or "", entry.action, entry.actor, entry.target or "-",
                              entry.detail or "")))


@tokens_cli.command("create")
@click.option("--email", required=True, help="The user the token acts as.")
@click.option("--name", default="", help="A label, e.g. the script that uses it.")
def tokens_create(email: str, name: str) -> None:
    try:
        row, token = create_token(email, name)
        db.session.commit()
    except ServiceError as exc:
        fail(exc.message)
    click.echo(f"Token {row.id} ({row.prefix}…) for {email}. It is shown once; store it now:")
    click.echo(token)


@tokens_cli.command("revoke")
@click.option("--id", "token_id", type=int, help="Token id.")
@click.option("--prefix", help="The token's first 10 characters.")
def tokens_revoke(token_id: int | None, prefix: str | None) -> None:
    try:
        count = revoke_token(token_id, prefix=prefix)
        db.session.commit()
    except ServiceError as exc:
        fail(exc.message)
    if not count:
        fail("no matching active token")
    click.echo(f"Revoked {count} token(s).")


@tokens_cli.command("list")
def tokens_list() -> None:
    for t in db.session.execute(select(ApiToken).order_by(ApiToken.id)).scalars():
        state = "revoked" if t.revoked_at else "active"
        click.echo(f"{t.id}\t{t.prefix}…\t{t.user.email}\t{t.name}\t{state}")


@vapid_cli.command("generate")
@click.option("--force", is_flag=True, help="Replace existing keys; every subscriber must resubscribe.")
@click.option("--subject", help="mailto: address or https: URL push services can contact.")
def vapid_generate(force: bool, subject: str | None) -> None:
    try:
        row, expired = generate_keys(force=force, subject=subject)
        db.session.commit()
    except ServiceError as exc:
        fail(exc.message)
    click.echo(f"Generated VAPID keys (subject {row.subject}).")
    if expired:
        click.echo(f"Marked {expired} subscription(s) expired (reason: key rotated).")
    click.echo(row.public_key)


@vapid_cli.command("show")
def vapid_show() -> None:
    try:
        keys = current_keys()
    except KeysUnavailable as exc:
        fail(str(exc))
    if keys is None:
        fail("no VAPID keys yet; run `flask --app app vapid generate`")
    click.echo(f"# source: {keys.source}, subject: {keys.subject}", err=True)
    click.echo(keys.public_key)


@push_cli.command("test")
@click.option("--subscription", "subscription_id", type=int, help="Send to this subscription id.")
@click.option("--all", "send_all", is_flag=True, help="Send to every active subscription.")
@click.option("--title")
@click.option("--body")
def push_test(subscription_id: int | None, send_all: bool, title: str | None, body: str | None) -> None:
    try:
        if current_keys() is None:
            fail("no VAPID keys; run `flask --app app vapid generate` first")
    except KeysUnavailable as exc:
        fail(str(exc))
    if not subscription_id and not send_all:
        fail("say which: --subscription ID or --all")
    ids = active_subscription_ids(subscription_id if subscription_id else None)
    if not ids:
        fail(f"no active subscription {subscription_id}" if subscription_id else "no active subscriptions yet")
    results = send_test(ids, title, body)
    failures = 0
    for r in sorted(results, key=lambda r: r.key):
        detail = f" ({r.reason})" if r.reason else ""
        click.echo(f"subscription {r.key}: {r.outcome.value} {r.status or '-'}{detail}")
        failures += r.outcome is not PushOutcome.SENT
    click.echo(f"{len(results) - failures} sent, {failures} not sent")
    if failures:
        sys.exit(2)


@push_cli.command("prune")
@click.option("--older-than-days", type=click.IntRange(min=0), default=30, show_default=True,
              help="Delete expired and unsubscribed subscriptions untouched for this many days.")
def push_prune(older_than_days: int) -> None:
    """Delete old expired/unsubscribed subscriptions (and their delivery rows)."""
    total = 0
    while True:
        deleted = prune_subscriptions(older_than_days, limit=10000)
        total += deleted
        if deleted < 10000:
            break
    click.echo(f"Deleted {total} expired or unsubscribed subscription(s) older than {older_than_days} day(s).")


def start_sweeper_thread(app: Flask, interval: int) -> threading.Thread:
    """Worker side: run the sweeper every `interval` s; a Redis lock keeps it to one worker."""
    def loop() -> None:
        while True:
            time.sleep(interval)
            try:
                lock = redis_connection(app).set("statuspage:sweeper-lock", "1", nx=True, ex=max(interval - 1, 1))
                if lock:
                    with app.app_context():
                        sweep()
                        db.session.remove()
            except Exception:  # keep sweeping after Redis or DB hiccups
                app.logger.exception("sweeper run failed")

    thread = threading.Thread(target=loop, name="statuspage-sweeper", daemon=True)
    thread.start()
    return thread


@click.command("worker")
@with_appcontext
@click.option("--burst", is_flag=True, help="Drain the queue (and due scheduled jobs), then exit.")
@click.option("--publish-only", is_flag=True,
              help="Only re-render the public snapshot: a small worker that never waits behind a fan-out.")
def worker_command(burst: bool, publish_only: bool) -> None:
    """RQ worker for the project's queue, with RQ's scheduler for delayed jobs."""
    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        fail("REDIS_URL is not set: without Redis, jobs run inside the web process (nothing to start)")
    try:
        redis_connection(app).ping()
    except Exception as exc:
        fail(f"cannot reach Redis at {app.config['REDIS_URL']}: {exc}")
    from .publish.publisher import publish_queue

    queues = [rq_queue(app, publish_queue(app))]
    if not publish_only:  # (the other workers sweep)
        try:
            sweep()
        except Exception:  # e.g. the database is briefly down: start anyway, jobs retry and the sweeper repeats
            app.logger.exception("initial sweep failed; the worker starts anyway")
        db.session.remove()
        if not burst:
            start_sweeper_thread(app, app.config["SWEEP_INTERVAL"])
        # The publish queue first: between two batch jobs a page re-render goes before the next
        # batch. It still waits for the batch in hand (~0.4 s, seconds on a starved machine),
        # which a --publish-only worker does not.
        queues.append(rq_queue(app))
    worker = AppWorker(queues, connection=redis_connection(app))
    worker.work(burst=burst, with_scheduler=not publish_only, logging_level="WARNING")


@click.command("sweep")
@with_appcontext
def sweep_command() -> None:
    """Run the sweeper once: due maintenances, undispatched events, stalled deliveries."""
    click.echo(sweep())


@click.command("bootstrap")
@with_appcontext
def bootstrap_command() -> None:
    """First-run set-up for `make run`: VAPID keys and a first admin if none exist."""
    ensure_triggers()
    if stored_key() is None and not current_app.config.get("VAPID_PUBLIC_KEY"):
        row, _ = generate_keys()
        click.echo(f"Generated VAPID keys; public key {row.public_key}")
    if db.session.execute(select(func.count(User.id))).scalar_one() == 0:
        password = secrets.token_urlsafe(12)
        create_user("admin@example.com", password, "admin")
        db.session.commit()
        click.echo("")
        click.echo("  First admin created. Sign in at /admin/login with:")
        click.echo("    email:    admin@example.com")
        click.echo(f"    password: {password}")
        click.echo("  (change it under Account once signed in, or with `flask --app app users set-password`)")
        click.echo("")
    db.session.commit()


def register_cli(app: Flask) -> None:
    for group in (users_cli, tokens_cli, vapid_cli, push_cli):
        app.cli.add_command(group)
    app.cli.add_command(worker_command)
    app.cli.add_command(sweep_command)
    app.cli.add_command(bootstrap_command)
