"""Seen and opened counts: what visitors' service workers report about an event's notifications.

A report names only the event, what happened to its notification ("shown" or "opened") and how
long ago (milliseconds on the device's own clock, so a wrong device clock does not matter). No
endpoint, cookie or other identifier is sent or stored: an event has two counters and a latency
histogram, nothing per subscriber.

Forged or duplicated reports cannot push an event's counts past what it actually sent: each
counter is capped at ``Event.sent_count`` under a row lock, and events that sent nothing take no
reports. While an event is still being delivered the cap is what it targets (a phone can show a
notification before its batch has written "sent"; those reports must not be lost), and the counts
are clamped to ``sent_count`` when it finishes (``push.delivery._mark_progress``). Reports are
bounded (MAX_REPORTS per request, age at most MAX_AGE_MS) and the endpoint is
rate-limited per client; a request with anything malformed is refused whole (400, nothing stored).
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, update

from .. import validation as v
from ..database import insert, write_lock
from ..errors import ValidationError
from ..extensions import db
from ..models import DELIVERING_EVENT_STATES, Event, EventShownLatency
from ..timeutil import utcnow

MAX_REPORTS = 50  # per request; the service worker sends at most this many at once
MAX_AGE_MS = 7 * 24 * 3600 * 1000  # older reports are dropped by the service worker, refused here
# Events fanned out longer ago than this take no more reports (the service worker drops reports
# older than 7 days, so a later one is a replay or a forgery).
MAX_EVENT_AGE = timedelta(days=8)
# A report whose age puts it before its event's fan-out started is ignored; this much earlier is
# still taken (as latency 0), for the clocks of the web and worker hosts not quite agreeing.
CLOCK_SLACK = timedelta(seconds=5)
REPORT_FIELDS = ("event", "kind", "age")
# Upper bounds (seconds) of the send-to-shown histogram: fine while phones are awake, coarse for
# devices that were off for hours. The last bound is MAX_AGE_MS, so every report fits a bucket.
LATENCY_BUCKETS = (1, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
                   86400, 3 * 86400, MAX_AGE_MS // 1000)


class ReportKind(StrEnum):
    SHOWN = "shown"
    OPENED = "opened"


@dataclass(frozen=True)
class Report:
    event_id: int
    kind: ReportKind
    age_ms: int


def parse_reports(data: Any) -> list[Report]:
    """{"reports": [{"event": id, "kind": "shown"|"opened", "age": ms}, ...]}, all or nothing."""
    v.require_object(data, ("reports",), what="body")
    items = data.get("reports")
    if not isinstance(items, list) or not items:
        raise ValidationError("reports must be a non-empty list", field="reports")
    if len(items) > MAX_REPORTS:
        raise ValidationError(f"reports may hold at most {MAX_REPORTS} items", field="reports")
    reports = []
    for item in items:
        v.require_object(item, REPORT_FIELDS, what="report")
        if "event" not in item:
            raise ValidationError("each report needs an event id", field="event")
        event_id = v.integer(item, "event", minimum=1, maximum=v.MAX_ID, required=True)
        kind = v.choice(item, "kind", tuple(ReportKind), required=True)
        age = v.integer(item, "age", minimum=0, maximum=MAX_AGE_MS, required=True)
        reports.append(Report(event_id, ReportKind(kind), age))
    return reports


def latency_bucket(seconds: float) -> int:
    """Index of the first bucket whose bound is at least `seconds`."""
    return min(bisect.bisect_left(LATENCY_BUCKETS, seconds), len(LATENCY_BUCKETS) - 1)


def record_reports(reports: Iterable[Report]) -> int:
    """Add reports to their events' counts, each capped at what the event sent; the caller commits.
    Returns how many counted (for logs and tests only: the endpoint does not say, since that would
    tell anyone how many an event was sent to). A report does not count when its event is unknown,
    sent nothing, was fanned out more than MAX_EVENT_AGE ago, or the count is at its cap; nor when
    its age says it happened before the event's fan-out started (beyond CLOCK_SLACK)."""
    now = utcnow()
    by_event: dict[int, dict[ReportKind, list[int]]] = defaultdict(lambda: defaultdict(list))
    for r in reports:
        by_event[r.event_id][r.kind].append(r.age_ms)
    accepted = 0
    # The caps hold under concurrent reports only if nobody else writes between our read and our
    # write: SQLite takes its write lock now; PostgreSQL locks the rows (FOR UPDATE), in id order
    # so two requests naming the same events never wait on each other in a cycle.
    write_lock()
    events = db.session.execute(
        select(Event).where(Event.id.in_(sorted(by_event)), Event.fanned_out_at.is_not(None),
                            Event.fanned_out_at >= now - MAX_EVENT_AGE)
        .order_by(Event.id).with_for_update()
    ).scalars().all()
    for event in events:
        kinds = by_event[event.id]
        # Milliseconds between the fan-out's start and now (plus the slack): an older report is
        # about something that happened before this event was sent, so it is not about this event.
        max_age_ms = (now - event.fanned_out_at + CLOCK_SLACK) // timedelta(milliseconds=1)
        opened_ages = [age for age in kinds[ReportKind.OPENED] if age <= max_age_ms]
        shown_ages = [age for age in kinds[ReportKind.SHOWN] if age <= max_age_ms]
        cap = report_cap(event)
        opened = min(len(opened_ages), max(0, cap - event.opened_count))
        shown_ages = shown_ages[:max(0, cap - event.shown_count)]
        event.opened_count += opened
        event.shown_count += len(shown_ages)
        accepted += opened + len(shown_ages)
        if shown_ages:
            _add_latencies(event, [(now - timedelta(milliseconds=age) - event.fanned_out_at).total_seconds()
                                   for age in shown_ages])
    db.session.flush()
    return accepted


def report_cap(event: Event) -> int:
    """How high an event's shown/opened counts may go: what it sent, or while it is still being
    delivered, what it targets (clamped to sent when it finishes, with trim_latencies)."""
    if event.state in DELIVERING_EVENT_STATES:
        return max(event.sent_count, event.queued_count)
    return event.sent_count


def _add_latencies(event: Event, seconds: list[float]) -> None:
    counts: dict[int, int] = defaultdict(int)
    for s in seconds:
        counts[latency_bucket(max(0.0, s))] += 1  # up to CLOCK_SLACK early: counted as 0
    stmt = insert(EventShownLatency).values(
        [{"event_id": event.id, "bucket": b, "count": n} for b, n in sorted(counts.items())])
    db.session.execute(stmt.on_conflict_do_update(
        index_elements=["event_id", "bucket"], set_={"count": EventShownLatency.count + stmt.excluded.count}))


def trim_latencies(event_id: int, shown: int) -> None:
    """Make an event's latency histogram hold at most `shown` entries (its shown count, once clamped
    to sent when it finishes), scaling every bucket down alike (largest remainders get the rest),
    so the percentiles describe the reports that still count. The caller holds the event's row."""
    rows = dict(db.session.execute(
        select(EventShownLatency.bucket, EventShownLatency.count).where(EventShownLatency.event_id == event_id)
    ).tuples().all())
    total = sum(rows.values())
    if total <= shown:
        return
    keep = {b: n * shown // total for b, n in rows.items()}
    rest = shown - sum(keep.values())
    for b in sorted(rows, key=lambda b: (-(rows[b] * shown % total), b))[:rest]:
        keep[b] += 1
    for b, n in keep.items():
        where = (EventShownLatency.event_id == event_id, EventShownLatency.bucket == b)
        if n:
            db.session.execute(update(EventShownLatency).where(*where).values(count=n))
        else:
            db.session.execute(delete(EventShownLatency).where(*where))


def percentile(histogram: dict[int, int], fraction: float) -> int | None:
    """The bucket bound (seconds) at or below which `fraction` of the reports fall, or None."""
    total = sum(histogram.values())
    if not total:
        return None
    needed, seen = fraction * total, 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= needed:
            return LATENCY_BUCKETS[bucket]
    return LATENCY_BUCKETS[max(histogram)]


def shown_latencies(event_ids: list[int]) -> dict[int, dict[str, int | None]]:
    """{event id: {"p50_seconds", "p95_seconds"}} for the given events, from one query."""
    histograms: dict[int, dict[int, int]] = defaultdict(dict)
    if event_ids:
        rows = db.session.execute(
            select(EventShownLatency.event_id, EventShownLatency.bucket, EventShownLatency.count)
            .where(EventShownLatency.event_id.in_(event_ids)))
        for event_id, bucket, count in rows:
            histograms[event_id][bucket] = count
    return {e: {"p50_seconds": percentile(histograms[e], 0.5), "p95_seconds": percentile(histograms[e], 0.95)}
            for e in event_ids}

