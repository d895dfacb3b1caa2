"""A self-hosted status page whose visitors can subscribe to browser push notifications."""
from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import Any

from dotenv import load_dotenv
from flask import Flask

from . import database
from .config import ConfigError, load_config
from .extensions import csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    load_dotenv(ROOT / ".env")
    app = Flask(
        __name__,
        instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"),
        static_folder=str(ROOT / "static"),
        template_folder=str(ROOT / "templates"),
    )
    # Before any blueprint: <int:...> in every route is a database id (1 .. 2**31-1), so a huge
    # number in a URL is a 404 instead of an overflow inside SQLite or PostgreSQL.
    from .web.http import DbIdConverter

    app.url_map.converters["int"] = DbIdConverter
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(load_config(app.instance_path))
    if test_config:
        app.config.update(test_config)
    _ensure_secret_key(app)
    _check_rate_limits(app)
    _check_vapid_subject(app)

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    from .integrations.logs import redact_tokens_in_logs

    redact_tokens_in_logs()

    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.login_message_category = "info"
    csrf.init_app(app)
    limiter.init_app(app)
    if app.config.get("TRUSTED_PROXIES"):
        # Behind N reverse proxies: the client address (rate limits) and https (secure cookies,
        # redirects) come from the X-Forwarded-* headers those proxies append, and only from them.
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_prefix=0)

    from . import (
        auth,  # noqa: F401  (registers the Flask-Login user loader)
        publish,
    )
    from .cli import register_cli
    from .push import retry
    from .web.admin import bp as admin_bp
    from .web.api import bp as api_bp
    from .web.embeds import bp as embeds_bp
    from .web.hooks import bp as hooks_bp
    from .web.http import register_http
    from .web.public import bp as public_bp
    from .web.pushapi import bp as push_bp
    from .web.statusapi import bp as status_bp

    app.register_blueprint(public_bp)
    app.register_blueprint(status_bp)
    app.register_blueprint(embeds_bp)
    app.register_blueprint(push_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(hooks_bp)
    # Token-authenticated and anonymous JSON APIs carry no session cookie to forge.
    csrf.exempt(api_bp)
    csrf.exempt(push_bp)
    csrf.exempt(status_bp)
    csrf.exempt(hooks_bp)  # monitoring tools authenticate with the integration's token
    register_http(app)
    register_cli(app)
    retry.init_app(app)
    publish.init_app(app)
    return app


def _check_rate_limits(app: Flask) -> None:
    """A mistyped limit would otherwise only show at request time, where it is skipped (limits
    fail open): refuse to start instead."""
    from limits import parse_many

    for key in ("RATELIMIT_SUBSCRIBE", "RATELIMIT_UNSUBSCRIBE", "RATELIMIT_TEST_PUSH", "RATELIMIT_LOGIN",
                "RATELIMIT_INTEGRATION", "RATELIMIT_INTEGRATION_AUTH"):
        value = app.config.get(key)
        if value:
            try:
                parse_many(value)
            except ValueError as exc:
                raise ConfigError(f"{key}: {exc} (expected e.g. '30 per minute; 300 per day')") from None


def _check_vapid_subject(app: Flask) -> None:
    """A VAPID_SUBJECT Apple refuses would fail every Safari subscriber at the first push."""
    from .push.keys import subject_problem

    subject = app.config.get("VAPID_SUBJECT")
    problem = subject_problem(subject) if subject else None
    if problem:
        raise ConfigError(f"VAPID_SUBJECT={subject!r} would be rejected by Apple's push service: {problem}. "
                          "Use a real address, e.g. mailto:ops@your-domain.com, or an https URL of your site.")


def _ensure_secret_key(app: Flask) -> None:
    if app.config.get("SECRET_KEY"):
        return
    if app.config.get("TESTING") or app.config.get("DEBUG_MODE"):
        # Development: a random key kept in instance/ so sessions and the encrypted VAPID key
        # survive restarts. Never used in production, where SECRET_KEY is required.
        path = Path(app.instance_path) / "dev-secret-key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        app.config["SECRET_KEY"] = path.read_text().strip()
        return
    raise ConfigError(
        "SECRET_KEY is not set. Set it in the environment or .env (see .env.example); "
        "for local development set FLASK_DEBUG=1 (make run does)."
    )
