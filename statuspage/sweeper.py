"""The periodic sweeper: the backstop that makes sure nothing scheduled or recorded is lost."""
from __future__ import annotations

import logging

from flask import current_app

from .events import dispatch_pending
from .incidents import run_due_maintenances
from .integrations import service as integrations
from .publish import sweep as publish_sweep
from .push.delivery import requeue_stalled
from .push.subscriptions import expire_stale_subscriptions, prune_subscriptions
from .reminders import send_due_reminders

log = logging.getLogger(__name__)


def sweep() -> dict[str, int]:
    """Start/complete due maintenances, record due maintenance reminders, mark missed heartbeats,
    set monitored components right after a maintenance window, dispatch undispatched events,
    re-queue stalled fan-outs, publish snapshot changes nobody published (and the whole snapshot
    after a new release)."""
    started = run_due_maintenances()
    reminded = send_due_reminders()
    missed = integrations.check_heartbeats()
    reconciled = integrations.reconcile_components()
    integrations.prune()
    dispatched = dispatch_pending()
    requeued = requeue_stalled()
    stale = 0
    if current_app.config.get("PUSH_STALE_DAYS"):
        stale = expire_stale_subscriptions(current_app.config["PUSH_STALE_DAYS"], limit=1000)
    pruned = 0
    if current_app.config.get("PUSH_PRUNE_DAYS"):
        # A little at a time: a flood of dead subscriptions is cleaned without long transactions.
        pruned = prune_subscriptions(current_app.config["PUSH_PRUNE_DAYS"], limit=1000)
    # Last: the maintenance transitions above are published in the same sweep.
    published = publish_sweep()["published"]
    return {"maintenances": started, "reminders": reminded, "heartbeats_missed": missed,
            "components_reconciled": reconciled, "dispatched": dispatched, "requeued": requeued, "stale": stale,
            "pruned": pruned, "published": published}
