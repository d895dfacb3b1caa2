"""Serving a public path from the app: the snapshot file's bytes, or the same renderer live when
the file is missing, with validators (strong ETag, Last-Modified, 304), shared-cache headers,
gzip, CORS where public data is meant to be read by other sites, and never a cookie."""
from __future__ import annotations

import time
from typing import Any

from flask import Response, current_app, get_flashed_messages, request, session
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.http import http_date

from ..extensions import db
from ..models import PublishRequest
from .registry import PublicPage
from .render import RenderContext, Rendered
from .store import SnapshotStore, StoredFile

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


def snapshot_store() -> SnapshotStore | None:
    return current_app.extensions.get("statuspage_snapshot")


def snapshot_cache_control() -> str:
    """The Cache-Control of every snapshot page (deploy/nginx.conf sends the same)."""
    cfg = current_app.config
    return (f"public, max-age={cfg['PUBLIC_MAX_AGE']}, stale-while-revalidate={cfg['PUBLIC_STALE_WHILE_REVALIDATE']}, "
            f"stale-if-error={cfg['PUBLIC_STALE_IF_ERROR']}")


def render_page(page: PublicPage, args: dict[str, Any], ctx: RenderContext) -> Rendered:
    return page.render(ctx, **args) if page.is_family else page.render(ctx)


def serve_page(page: PublicPage, args: dict[str, Any]) -> Response:
    if current_app.config["SESSION_COOKIE_NAME"] in request.cookies:
        # Someone who signed in (visitors never get a session cookie here): show a flashed
        # message, and an admin's own change at once even if it is still being published. Only
        # for this response, which no shared cache keeps.
        flashes = _pending_flashes()
        if flashes or _publish_pending():
            rendered = render_page(page, args, RenderContext(flashes or []))
            response = Response(rendered.body, content_type=str(rendered.content_type))
            response.headers["Cache-Control"] = "private, no-store"
            return response
    store = snapshot_store()
    stored = store.read(page.path(args)) if store is not None else None
    if stored is None:
        # Not published (yet): the same renderer, live. A member that does not exist raises 404.
        rendered = render_page(page, args, RenderContext())
        stored = StoredFile(rendered.body, time.time())
    return stored_response(stored, str(page.content_type), page.cache_control or snapshot_cache_control(),
                           cors=page.cors, headers=page.headers)


def stored_response(stored: StoredFile, content_type: str, cache_control: str, *, cors: bool = False,
                    headers: dict[str, str] | None = None, compressible: bool = True) -> Response:
    use_gzip = compressible and request.accept_encodings["gzip"] > 0
    out = {
        "ETag": f'"{stored.etag}-gz"' if use_gzip else f'"{stored.etag}"',
        "Last-Modified": http_date(stored.last_modified),
        "Cache-Control": cache_control,
        **(headers or {}),
    }
    if compressible:
        out["Vary"] = "Accept-Encoding"
    if cors:
        out["Access-Control-Allow-Origin"] = "*"
    if _not_modified(stored):
        response = Response(status=304, headers=out)
    else:
        if use_gzip:
            out["Content-Encoding"] = "gzip"
        response = Response(stored.gzip if use_gzip else stored.body, headers=out, content_type=content_type)
    response.public_snapshot = True  # type: ignore[attr-defined]
    return response


def _not_modified(stored: StoredFile) -> bool:
    tags = request.if_none_match
    if tags:
        # Weak comparison, as RFC 9110 prescribes for If-None-Match; the gzip and identity
        # variants share the content hash.
        if tags.star_tag:
            return True
        return any(tag.removesuffix("-gz") == stored.etag for tag in tags.as_set(include_weak=True))
    since = request.if_modified_since
    return since is not None and int(stored.last_modified) <= since.timestamp()


def _pending_flashes() -> list[tuple[str, str]] | None:
    if not session.get("_flashes"):
        return None
    return get_flashed_messages(with_categories=True)


def _publish_pending() -> bool:
    if snapshot_store() is None:
        return False
    try:
        return db.session.execute(select(PublishRequest.id).limit(1)).first() is not None
    except SQLAlchemyError:  # the database is down: the published page is the best answer
        db.session.rollback()
        return False


class PublicSessionInterface(SecureCookieSessionInterface):
    """Flask's cookie sessions, except that a public response never carries a cookie nor
    ``Vary: Cookie``: it is the same for everyone, so any shared cache may keep it."""

    def save_session(self, app, session, response) -> None:
        if getattr(response, "public_snapshot", False):
            response.headers.remove("Set-Cookie")
            return
        super().save_session(app, session, response)
