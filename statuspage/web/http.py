"""App-wide HTTP behaviour: error answers, security headers, template helpers."""
from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, current_app, flash, jsonify, redirect, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter, RoutingException

from ..errors import ServiceError
from ..events import rollback
from ..extensions import db
from ..timeutil import to_site

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


class DbIdConverter(IntegerConverter):
    """`<int:...>` limited to what fits an INTEGER primary key: 1 .. 2**31-1, in ASCII digits only
    (`\\d` would also match "١" or "５", which int() reads as 1 and 5).

    The range is in the regex, not only in min/max: when a value matches the regex but fails
    min/max, werkzeug goes on to the next rule for the path and answers 405 for a PATCH or DELETE
    whose GET twin exists, where 404 is right."""

    regex = (r"0*(?:[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
             r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])")

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def not_found_message() -> str:
    """What a JSON 404 says: a path that would exist with a valid id in one of its segments
    ("/api/v1/incidents/abc") names that segment; anything else is just "not found"."""
    segments = request.path.split("/")
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for i, segment in enumerate(segments):
        if not segment or re.fullmatch(DbIdConverter.regex, segment):
            continue
        candidate = "/".join([*segments[:i], "1", *segments[i + 1:]])
        try:
            adapter.match(candidate, method=request.method)
        except HTTPException:
            continue
        except RoutingException:  # e.g. a redirect to the slash-terminated rule: not an id problem
            continue
        return f"{segment[:40]!r} is not a valid id"
    return "not found"


def wants_json() -> bool:
    """One place decides whether an answer is JSON (APIs) or HTML (pages)."""
    path = request.path
    if path.startswith("/api/") or path.endswith(".json") or path.endswith(".atom"):
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def back_url(default: str) -> str:
    """Where to send a browser back to after a form error: the page it came from, but only when
    that page is on this site (the Referer header is the client's word; never an open redirect)."""
    referrer = request.referrer or ""
    parts = urlsplit(referrer)
    if referrer and parts.scheme in ("http", "https") and parts.netloc == request.host:
        return urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return default


def json_error(message: str, status: int, **extra: Any):
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def register_http(app: Flask) -> None:
    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError):
        rollback()  # the change, its outbox events and its after-commit jobs
        if wants_json():
            response = jsonify(exc.to_dict())
            response.status_code = exc.status_code
            return response
        if exc.status_code == 404 and request.method in ("GET", "HEAD"):
            # A page that does not exist is a 404 page, not a redirect with a message.
            return render_template("error.html", code=404, name="Not found", description=exc.message), 404
        flash(exc.message, "error")
        # Flashed messages show on admin pages (public pages come from the published snapshot).
        return redirect(back_url("/admin/")), 303

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        if wants_json():
            return json_error(f"CSRF check failed: {exc.description}", 400)
        flash("Your form expired or was sent from another site; please try again.", "error")
        return redirect(back_url("/admin/")), 303

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 429:
            # Flask-Limiter adds Retry-After and X-RateLimit-* to whatever is returned here.
            if wants_json():
                return json_error(f"too many requests: {exc.description}", 429)
            return render_template("error.html", code=429, name="Too many requests",
                                   description=f"Too many attempts ({exc.description}); wait a little and try "
                                               "again."), 429
        if wants_json():
            messages = {
                404: not_found_message() if exc.code == 404 else "",
                405: f"method {request.method} not allowed here",
                413: "request body too large",
                415: "unsupported media type",
            }
            message = messages.get(exc.code) or exc.description or exc.name
            return json_error(message, exc.code or 500)
        return render_template("error.html", code=exc.code, name=exc.name, description=exc.description), exc.code

    @app.errorhandler(Exception)
    def unhandled(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if wants_json():
            return json_error("internal error; it has been logged", 500)
        return render_template("error.html", code=500, name="Internal error",
                               description="Something went wrong; it has been logged."), 500

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if current_app.config["SITE_URL"].startswith("https://"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.path.startswith("/admin") or request.path.startswith("/api/v1"):
            response.headers["Cache-Control"] = "no-store"
        if request.path.startswith("/api/v2/") or request.path == "/feed.atom":
            # Public data: widgets on other sites may read it (errors included, so they can tell).
            response.headers.setdefault("Access-Control-Allow-Origin", "*")
        return response

    @app.before_request
    def start_local_jobs():
        # Embedded mode: start the in-process job thread (and its sweeper tick) with the server.
        if not app.config.get("REDIS_URL") and not app.config.get("JOBS_EAGER") \
                and "statuspage_runner" not in app.extensions and not app.config.get("TESTING"):
            from ..jobs import LocalRunner

            app.extensions["statuspage_runner"] = LocalRunner(app)

    @app.context_processor
    def template_globals() -> dict[str, Any]:
        return {
            "site_name": current_app.config["SITE_NAME"],
            "site_logo_url": current_app.config.get("SITE_LOGO_URL"),
            "site_url": current_app.config["SITE_URL"],
            "time_zone": current_app.config["SITE_TIMEZONE"],
        }

    @app.template_filter("localtime")
    def localtime(value, fmt: str = "%b %d, %Y %H:%M %Z") -> str:
        local = to_site(value)
        return local.strftime(fmt) if local else ""

    @app.template_filter("isotime")
    def isotime(value) -> str:
        local = to_site(value)
        return local.isoformat() if local else ""

    @app.template_filter("humanize")
    def humanize(value: str) -> str:
        return (value or "").replace("_", " ").capitalize()

    from ..markdown import render_markdown

    app.jinja_env.filters["markdown"] = render_markdown
