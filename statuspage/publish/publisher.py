"""The publish job: render what the pending publish requests affect and write the files.

One publisher at a time (a file lock in the snapshot directory, so it holds across RQ workers,
gunicorn processes with in-process jobs, and `flask publish`): two overlapping rounds could
otherwise finish in the wrong order and leave an older page in place. A job that finds the lock
taken simply ends: the holder keeps going while requests are due, and looks once more after
releasing the lock, so nothing committed meanwhile is stranded.

A round reads every due request, renders what they affect (the urgent pages in full, large
rebuilds only for ``PUBLISH_BUDGET_SECONDS`` before they are put back for the next round, so a
fresh change never waits behind 5,000 old incident pages), writes the files, and deletes exactly
the requests it read. Rounds start at most every ``PUBLISH_MIN_INTERVAL`` seconds: a burst of
changes is coalesced into a handful of renders. A page whose render fails keeps its previous
file and is retried with backoff; the error shows on the admin dashboard.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import NotFound

from ..errors import ServiceError
from ..extensions import db
from ..jobs import EnqueueError, enqueue, redis_connection
from ..models import PublishRequest, PublishStatus
from ..timeutil import utcnow
from .changes import SUPPRESS_SCHEDULE
from .registry import REGISTRY, ChangeSet, PublicPage, Topic
from .render import RenderContext
from .serve import render_page
from .store import SnapshotStore

log = logging.getLogger(__name__)

PUBLISH_JOB = "statuspage.publish.publisher.publish_pending"
LOCK_FILE = ".publish.lock"
BUILD_FILE = ".build-id"
# How long "a publish job is queued" is believed without the job starting (a lost job is
# covered by the sweeper after this).
QUEUED_TTL = 60
JOB_RETRY = (3, [5, 30, 120])
MAX_ROWS_PER_ROUND = 5000


class PublishError(RuntimeError):
    """Some pages could not be rendered or written; their previous files stay in place."""


@dataclass
class RoundReport:
    rendered: int = 0
    written: int = 0
    removed: int = 0
    deferred: int = 0
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class PublishReport(RoundReport):
    """The totals of one job's rounds."""

    rounds: int = 0
    skipped: bool = False  # another publisher held the lock

    def add(self, r: RoundReport) -> None:
        self.rounds += 1
        self.rendered += r.rendered
        self.written += r.written
        self.removed += r.removed
        self.deferred = r.deferred
        self.failed.update(r.failed)


def store_for(app) -> SnapshotStore:
    return app.extensions["statuspage_snapshot"]


# --- scheduling ------------------------------------------------------------------------------------

def publish_queue(app) -> str:
    """Publish jobs have their own RQ queue, which workers take first: a 100k fan-out's batch jobs
    ahead of it in one queue would otherwise delay the page by the whole fan-out."""
    return f"{app.config['RQ_QUEUE']}-publish"


def _queued_key(app) -> str:
    return f"{app.config['RQ_QUEUE']}:publish-queued"


def schedule_publish() -> None:
    """Run the publish job soon: inline (eager tests), on RQ, or on the in-process runner; at most
    one queued at a time (the job clears the mark when it starts, before reading requests)."""
    app = current_app._get_current_object()
    if app.config.get("JOBS_EAGER"):
        try:
            publish_pending()
        except PublishError as exc:  # recorded for the dashboard; the change itself is committed
            log.warning("%s", exc)
        return
    if app.config.get("REDIS_URL"):
        try:
            if redis_connection(app).set(_queued_key(app), "1", nx=True, ex=QUEUED_TTL):
                enqueue(PUBLISH_JOB, queue=publish_queue(app), retry=JOB_RETRY)
        except (EnqueueError, OSError) as exc:
            log.warning("publish not queued (%s); the sweeper publishes the pending changes", exc)
        except Exception as exc:  # redis.RedisError
            log.warning("publish not queued (%s); the sweeper publishes the pending changes", exc)
        return
    if "statuspage_runner" not in app.extensions:
        return  # a command-line process: the server's in-process runner (its sweeper) publishes
    flags = app.extensions.setdefault("statuspage_publish_queued", {"queued": False})
    if not flags["queued"]:
        flags["queued"] = True
        enqueue(PUBLISH_JOB)


def _clear_queued(app) -> None:
    if app.config.get("REDIS_URL") and not app.config.get("JOBS_EAGER"):
        with suppress(Exception):
            redis_connection(app).delete(_queued_key(app))
    flags = app.extensions.get("statuspage_publish_queued")
    if flags:
        flags["queued"] = False


def request_publish(*targets: str, schedule: bool = True) -> None:
    """Ask for targets to be re-rendered (e.g. ``Topic.ALL``) and commit; the publish job follows
    unless ``schedule`` is False (the caller runs ``publish_pending`` itself)."""
    db.session.add_all([PublishRequest(target=str(t)) for t in targets])
    db.session.info[SUPPRESS_SCHEDULE] = not schedule
    try:
        db.session.commit()
    finally:
        db.session.info.pop(SUPPRESS_SCHEDULE, None)


# --- the job -----------------------------------------------------------------------------------

def publish_pending() -> PublishReport:
    """The publish job (RQ, in-process runner, sweeper, ``flask publish``)."""
    app = current_app._get_current_object()
    # A fresh app context is a fresh session: eager mode calls this from inside another
    # session's commit, and a worker's session must not carry anything into or out of it.
    with app.app_context():
        report = Publisher(app).run()
    if report.failed:
        raise PublishError(f"{len(report.failed)} page(s) not published: "
                           + "; ".join(f"{p}: {e}" for p, e in sorted(report.failed.items())[:5]))
    return report


class PublishLock:
    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self.handle = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self.handle = handle
        return True

    def release(self) -> None:
        if self.handle is not None:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


class Publisher:
    def __init__(self, app) -> None:
        self.app = app
        self.store = store_for(app)
        self.min_interval = 0.0 if app.config.get("JOBS_EAGER") else app.config["PUBLISH_MIN_INTERVAL"]
        self.budget = None if app.config.get("JOBS_EAGER") else app.config["PUBLISH_BUDGET_SECONDS"]

    def run(self) -> PublishReport:
        _clear_queued(self.app)
        report = PublishReport()
        while True:
            lock = PublishLock(self.store.root)
            try:
                acquired = lock.acquire()
            except OSError as exc:  # the snapshot directory cannot be created or written
                message = f"snapshot directory {self.store.root}: {exc.__class__.__name__}: {exc}"
                self._record_failure(message)
                report.failed[str(self.store.root)] = message
                return report
            if not acquired:
                report.skipped = True
                return report
            try:
                while True:
                    result = self.round()
                    if result is None:
                        break
                    report.add(result)
            finally:
                lock.release()
                db.session.remove()
            # Requests committed while we held the lock found it taken and left them to us.
            if not self.due_count():
                return report

    def due_count(self) -> int:
        now = utcnow()
        return db.session.execute(select(func.count(PublishRequest.id)).where(
            or_(PublishRequest.not_before.is_(None), PublishRequest.not_before <= now))).scalar_one()

    def _coalesce(self) -> None:
        """Start rounds at most every min_interval: the first change of a burst goes out at once,
        the rest of the burst is collected into the next round."""
        if not self.min_interval:
            return
        marker = self.store.root / LOCK_FILE
        with suppress(OSError):
            wait = marker.stat().st_mtime + self.min_interval - time.time()
            if 0 < wait <= self.min_interval:
                time.sleep(wait)
        with suppress(OSError):
            os.utime(marker)

    def round(self) -> RoundReport | None:
        db.session.info[SUPPRESS_SCHEDULE] = True
        now = utcnow()
        due = (or_(PublishRequest.not_before.is_(None), PublishRequest.not_before <= now))
        found = db.session.execute(select(PublishRequest.id).where(due).limit(1)).first()
        db.session.rollback()  # no transaction stays open while we wait
        if not found:
            return None
        self._coalesce()
        now = utcnow()
        due = (or_(PublishRequest.not_before.is_(None), PublishRequest.not_before <= now))
        rows = db.session.execute(select(PublishRequest).where(due).order_by(PublishRequest.id)
                                  .limit(MAX_ROWS_PER_ROUND)).scalars().all()
        if not rows:
            db.session.rollback()
            return None
        started = time.perf_counter()
        changes = parse_targets(row.target for row in rows)
        attempts = {row.target: row.attempts for row in rows if row.target.startswith("/")}
        report = RoundReport()
        try:
            urgent, deferred = plan(changes)
            deadline = None if self.budget is None else time.monotonic() + self.budget
            ctx = RenderContext()
            todo = urgent + deferred
            done = 0
            with self.app.test_request_context("/", base_url=self.app.config["SITE_URL"]):
                # What the changes touched directly goes out first, rendered before anything is
                # written (its files change within milliseconds of each other); then as much of a
                # big rebuild as the budget allows.
                for batch in (urgent, deferred):
                    rendered: list[tuple[str, bytes | None]] = []
                    for page, args in batch:
                        if batch is deferred and deadline is not None and time.monotonic() > deadline:
                            break
                        done += 1
                        rendered.append(self._render_one(page, args, ctx, report))
                    for path, body in rendered:
                        self._write_one(path, body, report)
                if Topic.ALL in changes.topics:
                    self._publish_site_files(report)
            leftover = todo[done:]
            report.deferred = len(leftover)
            for page in {page for page in REGISTRY.pages if page.is_family}:
                if changes.touches(_prune_topics(page)):
                    report.removed += prune_family(self.store, page)
            db.session.execute(delete(PublishRequest).where(PublishRequest.id.in_([r.id for r in rows]))
                               .execution_options(synchronize_session=False))
            for row in rows:
                db.session.expunge(row)
            retry_at = {}
            for path in report.failed:
                tries = attempts.get(path, 0) + 1
                retry_at[path] = (tries, now + timedelta(seconds=min(5 * 2 ** (tries - 1), 600)))
            db.session.add_all(
                [PublishRequest(target=page.path(args)) for page, args in leftover]
                + [PublishRequest(target=path, attempts=tries, not_before=when)
                   for path, (tries, when) in retry_at.items()])
            self._record(report, time.perf_counter() - started, changes)
            db.session.commit()
        except SQLAlchemyError as exc:
            # The database went away mid-round: nothing is deleted, the requests stay for a retry.
            db.session.rollback()
            self._record_failure(f"database error while publishing: {exc.__class__.__name__}: {exc}")
            raise
        if report.failed:
            log.warning("publish: %d page(s) failed, kept their previous files: %s", len(report.failed),
                        report.failed)
        return report

    def _render_one(self, page: PublicPage, args: dict[str, Any], ctx: RenderContext,
                    report: RoundReport) -> tuple[str, bytes | None]:
        """(path, bytes), or (path, None) for a member that is gone; failures go to the report."""
        path = page.path(args)
        try:
            body = render_page(page, args, ctx).body
        except NotFound:
            return path, None
        except ServiceError as exc:
            if exc.status_code == 404:
                return path, None
            report.failed[path] = f"{exc.__class__.__name__}: {exc}"
        except SQLAlchemyError:
            raise
        except Exception as exc:  # a template error, a bug in one page: the other pages still go out
            log.exception("publish: rendering %s failed", path)
            report.failed[path] = f"{exc.__class__.__name__}: {exc}"
        else:
            report.rendered += 1
            return path, body
        return path, b""

    def _write_one(self, path: str, body: bytes | None, report: RoundReport) -> None:
        if path in report.failed:
            return
        if body is None:
            report.removed += self.store.remove(path)
            return
        try:
            report.written += self.store.write(path, body)
        except OSError as exc:  # a full disk, a quota: the previous file is untouched
            log.error("publish: writing %s failed: %s", path, exc)
            report.failed[path] = f"{exc.__class__.__name__}: {exc}"

    def _publish_site_files(self, report: RoundReport) -> None:
        from .assets import publish_assets

        try:
            report.written += publish_assets(self.store)
            self.store.sweep_temp_files()
            (self.store.root / BUILD_FILE).write_text(build_id(self.app))
        except OSError as exc:
            report.failed["/static/"] = f"{exc.__class__.__name__}: {exc}"

    def _record(self, report: RoundReport, seconds: float, changes: ChangeSet) -> None:
        status = publish_status_row()
        now = utcnow()
        status.rounds += 1
        status.files_written += report.written
        status.last_duration_ms = round(seconds * 1000)
        status.last_files = report.written
        if Topic.ALL in changes.topics:
            status.build_id = build_id(self.app)
        if report.failed:
            status.last_error = "; ".join(f"{p}: {e}" for p, e in sorted(report.failed.items())[:5])[:2000]
            status.last_error_at = now
            status.failing_since = status.failing_since or now
        else:
            status.last_published_at = now
            status.failing_since = None

    def _record_failure(self, message: str) -> None:
        try:
            status = publish_status_row()
            now = utcnow()
            status.last_error, status.last_error_at = message[:2000], now
            status.failing_since = status.failing_since or now
            db.session.commit()
        except SQLAlchemyError:
            db.session.rollback()


def publish_status_row() -> PublishStatus:
    status = db.session.get(PublishStatus, 1)
    if status is None:
        status = PublishStatus(id=1, rounds=0, files_written=0, last_duration_ms=0, last_files=0)
        db.session.add(status)
    return status


# --- planning ----------------------------------------------------------------------------------

def parse_targets(targets) -> ChangeSet:
    changes = ChangeSet()
    for target in targets:
        if target.startswith("/"):
            changes.paths.add(target)
        elif target.startswith("incident:"):
            with suppress(ValueError):
                changes.incident_ids.add(int(target.split(":", 1)[1]))
        else:
            with suppress(ValueError):
                changes.topics.add(Topic(target))
    return changes


def plan(changes: ChangeSet) -> tuple[list[tuple[PublicPage, dict]], list[tuple[PublicPage, dict]]]:
    """(urgent, deferred) pages for a change set, each page once; urgent ones in registry order."""
    urgent: list[tuple[PublicPage, dict]] = []
    deferred: list[tuple[PublicPage, dict]] = []
    seen: set[str] = set()

    def add(into, page, args):
        path = page.path(args)
        if path not in seen:
            seen.add(path)
            into.append((page, args))

    for page in REGISTRY.pages:
        if page.is_family:
            now, later = page.affected(changes)  # type: ignore[misc]
            for args in now:
                add(urgent, page, args)
            for args in later:
                add(deferred, page, args)
        elif changes.touches(page.topics):
            add(urgent, page, {})
    for path in sorted(changes.paths):
        match = REGISTRY.match(path)
        if match:
            add(deferred, *match)
    return urgent, deferred


def _prune_topics(page: PublicPage) -> set[Topic]:
    return {Topic.ALL, Topic.INCIDENT_LIST} if page.rule.startswith("/history") else {Topic.ALL}


def family_root(page: PublicPage) -> str:
    return page.rule.split("<", 1)[0].strip("/")


def prune_family(store: SnapshotStore, page: PublicPage) -> int:
    """Delete the files of members that no longer exist (a deleted incident, a history page too many)."""
    root = store.root / family_root(page)
    if not root.is_dir():
        return 0
    keep = {page.path(args).rstrip("/") for args in page.all_args()}
    removed = 0
    for index in root.glob("*/index.html"):
        url = "/" + index.parent.relative_to(store.root).as_posix()
        if url not in keep:
            removed += store.remove(url)
    return removed


# --- the build identity ------------------------------------------------------------------------

def build_id(app) -> str:
    """What the published files were rendered by: templates, static files, the code and the site's
    configuration. A different one means every file must be re-rendered (a new release)."""
    cached = app.extensions.get("statuspage_build_id")
    if cached:
        return cached
    import hashlib

    from .. import ROOT

    digest = hashlib.sha256()
    for folder in ("templates", "static", "statuspage"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    for key in ("SITE_URL", "SITE_NAME", "SITE_TIMEZONE", "SITE_LOGO_URL", "VAPID_PUBLIC_KEY"):
        digest.update(f"{key}={app.config.get(key)}\0".encode())
    value = digest.hexdigest()[:32]
    app.extensions["statuspage_build_id"] = value
    return value


def published_build_id(app) -> str | None:
    try:
        return (store_for(app).root / BUILD_FILE).read_text().strip()
    except OSError:
        return None
