"""The published snapshot: every public response is also a file, so the page survives its crowd.

``PUBLIC_SNAPSHOT_DIR`` (default ``instance/public``) holds every public response in the usual
static-site layout (``/`` -> ``index.html``, ``/incidents/7`` -> ``incidents/7/index.html``,
``/api/v2/summary.json`` -> ``api/v2/summary.json``, content-hashed assets under ``static/``),
each with a ``.gz`` sibling. nginx serves those files directly (``deploy/nginx.conf``); the app
serves the same bytes itself, with validators and cache headers, and renders live with the same
renderer when a file is missing.

How the pieces fit:

* ``registry`` — the public paths. ``public_page(bp, "/badge.svg", topics={...})`` or
  ``public_family(bp, "/badge/<int:component_id>.svg", members=..., affected=...)`` over a render
  function is all a new public endpoint needs: its route, its file, its re-renders and its
  deletion follow from the registration.
* ``render`` — the one renderer (``RenderContext`` shares the summary between pages of a round).
* ``changes`` — SQLAlchemy session events turn every flush that touches public data into
  ``PublishRequest`` rows in the same transaction; after the commit a publish job is scheduled.
  New public models: ``changes.track(Model, topics=...)``.
* ``publisher`` — the job: one at a time (file lock), coalesced rounds, bounded work per round,
  retries with backoff, status for the dashboard, the sweeper's catch-up.
* ``store`` — atomic file writes (temp, fsync, rename; a full disk never truncates a page) and the
  app's read cache.
* ``serve`` — the HTTP side: ETag/Last-Modified/304, ``Cache-Control`` for shared caches, gzip,
  CORS for public data, no cookies.
* ``assets`` — content-hashed, immutable static URLs.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from ..extensions import db
from ..models import PublishRequest, PublishStatus
from ..timeutil import utcnow
from . import changes  # noqa: F401  (registers the session listeners)
from .assets import HASHED, asset_manifest, asset_url
from .registry import Topic
from .serve import IMMUTABLE, REVALIDATE, PublicSessionInterface, stored_response
from .store import SnapshotStore

log = logging.getLogger(__name__)

OFF = ("off", "none", "false", "0")


def init_app(app: Flask) -> None:
    app.session_interface = PublicSessionInterface()
    app.add_template_global(asset_url, "asset_url")
    app.view_functions["static"] = serve_static
    app.extensions["statuspage_started_at"] = time.time()
    setting = app.config.get("PUBLIC_SNAPSHOT_DIR")
    if setting is None or str(setting).strip().lower() not in OFF:
        root = Path(setting) if setting else Path(app.instance_path) / "public"
        app.extensions["statuspage_snapshot"] = SnapshotStore(root)
    app.cli.add_command(publish_command)


def snapshot_enabled(app: Flask | None = None) -> bool:
    return "statuspage_snapshot" in (app or current_app).extensions


def serve_static(filename: str):
    """/static/<name>: content-hashed names are immutable; plain names are revalidated each time."""
    manifest = asset_manifest()
    if HASHED.match(filename.rsplit("/", 1)[-1]):
        asset = manifest.by_hashed.get(filename)
        if asset is not None:
            return stored_response(asset.stored, asset.content_type, IMMUTABLE, compressible=asset.compressible)
        match = HASHED.match(filename)
        current = manifest.assets.get(f"{match['stem']}{match['ext']}") if match else None
        if current is not None:
            # Another release's URL (a page cached across a deploy): today's file, not kept for long.
            return stored_response(current.stored, current.content_type, REVALIDATE,
                                   compressible=current.compressible)
    response = current_app.send_static_file(filename)
    response.headers["Cache-Control"] = REVALIDATE
    return response


def sweep() -> dict[str, int]:
    """The sweeper's part: publish what is pending (a job lost, Redis down at commit time), and
    re-render everything for a new release or when the snapshot is missing."""
    from .publisher import PublishError, build_id, publish_pending, published_build_id, request_publish

    app = current_app._get_current_object()
    if not snapshot_enabled(app):
        return {"published": 0}
    published = published_build_id(app)
    rebuild = published is None or (published != build_id(app) and _started_after_last_build(app))
    if rebuild and not db.session.execute(
            select(PublishRequest.id).where(PublishRequest.target == Topic.ALL.value).limit(1)).first():
        request_publish(Topic.ALL, schedule=False)
    _request_refreshes(app)
    oldest = db.session.execute(select(func.min(PublishRequest.created_at)).where(
        (PublishRequest.not_before.is_(None)) | (PublishRequest.not_before <= utcnow()))).scalar_one()
    db.session.rollback()
    if oldest is None or (not rebuild and (utcnow() - oldest).total_seconds() < app.config["PUBLISH_SWEEP_AFTER"]):
        return {"published": 0}
    try:
        report = publish_pending()
    except PublishError as exc:  # recorded for the dashboard; retried on the next sweep
        log.warning("sweeper: %s", exc)
        return {"published": 0}
    return {"published": report.written}


def _request_refreshes(app: Flask) -> None:
    """Pages registered with ``refresh_every`` (they change with time alone) are re-rendered at
    least that often; unchanged bytes are not rewritten, so their validators stay."""
    from .publisher import request_publish
    from .registry import REGISTRY

    last: dict[str, float] = app.extensions.setdefault("statuspage_refreshed", {})
    now = time.monotonic()
    due = []
    for page in REGISTRY.pages:
        if page.refresh_every is None:
            continue
        for args in page.all_args():
            path = page.path(args)
            if now - last.get(path, -1e18) >= page.refresh_every.total_seconds():
                last[path] = now
                due.append(path)
    if due:
        request_publish(*due, schedule=False)


def _started_after_last_build(app: Flask) -> bool:
    """Only a process started after the last full build replaces it: during a rolling deploy the
    old release's processes must not re-render the site back to their own templates."""
    from .publisher import BUILD_FILE, store_for

    try:
        built = (store_for(app).root / BUILD_FILE).stat().st_mtime
    except OSError:
        return True
    return app.extensions["statuspage_started_at"] > built


def publish_state() -> dict[str, Any]:
    """For the admin dashboard: is the public snapshot current, and if not, why."""
    if not snapshot_enabled():
        return {"enabled": False}
    status = db.session.get(PublishStatus, 1)
    pending, oldest = db.session.execute(
        select(func.count(PublishRequest.id), func.min(PublishRequest.created_at))).one()
    return {
        "enabled": True,
        "directory": str(current_app.extensions["statuspage_snapshot"].root),
        "pending": pending,
        "oldest_pending_seconds": (utcnow() - oldest).total_seconds() if oldest else None,
        "last_published_at": status.last_published_at if status else None,
        "last_duration_ms": status.last_duration_ms if status else None,
        "rounds": status.rounds if status else 0,
        "last_error": status.last_error if status and status.failing_since else None,
        "last_error_at": status.last_error_at if status else None,
        "failing_since": status.failing_since if status else None,
    }


@click.command("publish")
@with_appcontext
def publish_command() -> None:
    """Render the whole public snapshot now (after a deploy, or to repair it)."""
    from .publisher import PublishError, publish_pending, request_publish

    if not snapshot_enabled():
        raise click.ClickException("PUBLIC_SNAPSHOT_DIR is off: there is no snapshot to publish")
    request_publish(Topic.ALL, schedule=False)
    try:
        report = publish_pending()
    except PublishError as exc:
        raise click.ClickException(str(exc)) from None
    root = current_app.extensions["statuspage_snapshot"].root
    click.echo(f"Published {report.rendered} page(s) in {report.rounds} round(s) to {root}: "
               f"{report.written} file(s) written, {report.removed} removed.")
