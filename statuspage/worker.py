"""The RQ worker class: no fork per job, so the push sender's keep-alive pool survives between jobs."""
from __future__ import annotations

from rq.worker import SimpleWorker

from .extensions import db


class AppWorker(SimpleWorker):
    """Runs jobs in the worker process inside the app context `flask worker` already pushed."""

    def perform_job(self, job, queue):
        try:
            return super().perform_job(job, queue)
        finally:
            # A fresh session per job: no stale identity map or half-open transaction carries over.
            db.session.remove()
