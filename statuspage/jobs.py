"""Background jobs: RQ when REDIS_URL is set, an in-process thread otherwise.

Jobs are plain importable functions enqueued by dotted path with ids as arguments (never ORM
objects). The same functions run in both modes; in the embedded mode a single daemon thread
runs them inside an app context, and a ticker runs the sweeper so maintenance windows start on
time and undispatched events are never lost.
"""
from __future__ import annotations

import enum
import heapq
import importlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)


class JobName(enum.StrEnum):
    """Every job the app enqueues, by the dotted path RQ (and the local runner) import it from.
    The one definition of each name: enqueue with these, never with a string literal."""

    FAN_OUT = "statuspage.push.delivery.fan_out"
    SEND_BATCH = "statuspage.push.delivery.send_batch"
    RESUME_EVENT = "statuspage.push.delivery.resume_event"
    SEND_TEST = "statuspage.push.delivery.send_test_job"
    RUN_DUE_MAINTENANCES = "statuspage.incidents.run_due_maintenances"
    SEND_DUE_REMINDERS = "statuspage.reminders.send_due_reminders"
    SWEEP = "statuspage.sweeper.sweep"


class EnqueueError(RuntimeError):
    """The job could not be handed to the queue (e.g. Redis is down)."""


def resolve(path: str) -> Callable[..., Any]:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def redis_connection(app: Flask | None = None):
    from redis import Redis

    app = app or current_app
    conn = app.extensions.get("statuspage_redis")
    if conn is None:
        conn = Redis.from_url(app.config["REDIS_URL"], socket_connect_timeout=2, socket_timeout=5)
        app.extensions["statuspage_redis"] = conn
    return conn


def rq_queue(app: Flask | None = None, name: str | None = None):
    from rq import Queue

    app = app or current_app
    return Queue(name or app.config["RQ_QUEUE"], connection=redis_connection(app))


def enqueue(path: str, *args: Any, delay: float = 0.0, job_id: str | None = None,
            retry: tuple[int, list[int]] | None = None, queue: str | None = None) -> None:
    """Queue `path(*args)` to run after `delay` seconds (on RQ queue `queue`, default RQ_QUEUE).
    Raises EnqueueError if it cannot."""
    path = str(path)  # a JobName is stored as its plain dotted path
    app = current_app._get_current_object()
    if app.config.get("JOBS_EAGER"):
        # Tests: run inline and synchronously; delayed jobs wait in a list for `run_delayed_jobs`.
        if delay > 0:
            app.extensions.setdefault("statuspage_delayed", []).append((time.monotonic() + delay, path, args))
        else:
            resolve(path)(*args)
        return
    if app.config.get("REDIS_URL"):
        from rq import Retry

        kwargs: dict[str, Any] = {"job_id": job_id}
        if retry:
            kwargs["retry"] = Retry(max=retry[0], interval=retry[1])
        try:
            rq = rq_queue(app, queue)
            if delay > 0:
                rq.enqueue_in(timedelta(seconds=delay), path, *args, **kwargs)
            else:
                rq.enqueue(path, *args, **kwargs)
        except Exception as exc:  # redis.ConnectionError, TimeoutError, ...
            raise EnqueueError(f"could not enqueue {path}: {exc}") from exc
        return
    runner: LocalRunner | None = app.extensions.get("statuspage_runner")
    if runner is None:
        runner = LocalRunner(app)
        app.extensions["statuspage_runner"] = runner
    runner.submit(path, args, delay)


def run_delayed_jobs(app: Flask, *, due_only: bool = False) -> int:
    """Eager mode: run the delayed jobs (all of them, or only those already due)."""
    pending = app.extensions.get("statuspage_delayed", [])
    now = time.monotonic()
    ready = [job for job in pending if not due_only or job[0] <= now]
    app.extensions["statuspage_delayed"] = [job for job in pending if job not in ready]
    for _, path, args in sorted(ready, key=lambda job: job[0]):
        resolve(path)(*args)
    return len(ready)


class LocalRunner:
    """One daemon thread that runs queued jobs (and the periodic sweeper) in app contexts."""

    def __init__(self, app: Flask):
        self.app = app
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._counter = itertools.count()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="statuspage-jobs", daemon=True)
        self._thread.start()

    def submit(self, path: str, args: tuple, delay: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + max(delay, 0.0), next(self._counter), path, args))
            self._cond.notify()

    def _run(self) -> None:
        interval = self.app.config.get("SWEEP_INTERVAL", 30)
        next_sweep = time.monotonic() + 1.0
        while True:
            with self._cond:
                now = time.monotonic()
                wait_for = next_sweep - now
                if self._heap:
                    wait_for = min(wait_for, self._heap[0][0] - now)
                if wait_for > 0:
                    self._cond.wait(timeout=wait_for)
                    continue
                now = time.monotonic()
                item = heapq.heappop(self._heap) if self._heap and self._heap[0][0] <= now else None
            if item is not None:
                self._execute(item[2], item[3])
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + interval
                self._execute(JobName.SWEEP, ())

    def _execute(self, path: str, args: tuple) -> None:
        with self.app.app_context():
            try:
                resolve(path)(*args)
            except Exception:
                # Jobs record their own failures; the runner must survive to run the next one.
                log.exception("job %s%r failed", path, args)
