"""The periodic sweeper: the backstop that makes sure nothing scheduled or recorded is lost."""
from __future__ import annotations

import logging

from .events import dispatch_pending
from .incidents import run_due_maintenances

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """Start/complete due maintenances, dispatch undispatched events, re-queue stalled fan-outs."""
    from .push.delivery import requeue_stalled

    started = run_due_maintenances()
    dispatched = dispatch_pending()
    requeued = requeue_stalled()
    return {"maintenances": started, "dispatched": dispatched, "requeued": requeued}
