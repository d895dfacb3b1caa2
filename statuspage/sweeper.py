"""The periodic sweeper: the backstop that makes sure nothing scheduled or recorded is lost."""
from __future__ import annotations

import logging

from flask import current_app

from .events import dispatch_pending
from .incidents import run_due_maintenances
from .publish import sweep as publish_sweep

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """Start/complete due maintenances, dispatch undispatched events, re-queue stalled fan-outs,
    publish snapshot changes nobody published (and the whole snapshot after a new release)."""
    from .push.delivery import requeue_stalled

    started = run_due_maintenances()
    dispatched = dispatch_pending()
    requeued = requeue_stalled()
    pruned = 0
    if current_app.config.get("PUSH_PRUNE_DAYS"):
        # A little at a time: a flood of dead subscriptions is cleaned without long transactions.
        from .push.subscriptions import prune_subscriptions

        pruned = prune_subscriptions(current_app.config["PUSH_PRUNE_DAYS"], limit=1000)
    # Last: the maintenance transitions above are published in the same sweep.
    published = publish_sweep()["published"]
    return {"maintenances": started, "dispatched": dispatched, "requeued": requeued, "pruned": pruned,
            "published": published}
