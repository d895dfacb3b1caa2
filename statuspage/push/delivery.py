"""Event fan-out and delivery jobs.

fan_out(event_id)            claims the event, decides whether it is sent at all (notify flag,
                             push enabled, trigger on, component debounce), counts matching active
                             subscriptions and enqueues one send_batch job per id range.
send_batch(event_id, lo, hi) claims (event, subscription) delivery rows with one
                             INSERT ... SELECT ... ON CONFLICT DO NOTHING, so a retried or
                             duplicated job never sends twice, then sends concurrently and writes
                             the outcomes in bulk.

Every job re-reads state from the database and is safe to run twice; the sweeper uses that to
recover from lost jobs and dead workers. A batch's results are classified (``classify_results``),
the final ones written in bulk (``write_final_outcomes``, which test pushes use too) and the
deferred ones scheduled again (``schedule_retries``) as ``retry.RetryPolicy`` says; attempts count
from 1, as ``Delivery.attempts`` does. Event and delivery states are ``models.EventState`` and
``models.DeliveryState``; job names are ``jobs.JobName``.
"""
from __future__ import annotations

import logging
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Integer, Select, and_, any_, case, func, literal, or_, select, true, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError

from .. import reminders
from ..errors import ServiceError, ValidationError
from ..extensions import db
from ..jobs import EnqueueError, JobName, enqueue
from ..models import (
    DELIVERING_EVENT_STATES,
    DOWN_STATUSES,
    OPEN_DELIVERY_STATES,
    AdminAlert,
    Component,
    Delivery,
    DeliveryState,
    Event,
    EventState,
    Subscription,
    SubscriptionStatus,
    subscription_components,
)
from ..timeutil import utcnow
from .crypto import VapidSigner, b64url_decode
from .formats import PayloadFormat, encode_for, uses_declarative
from .keys import KeysUnavailable, current_keys
from .retry import retry_policy
from .seen import trim_latencies
from .sender import OutgoingPush, PushOutcome, PushResult, PushSender
from .settings import absolute_url, badge_url, get_settings, icon_url
from .subscriptions import MAINTENANCE_EVENT_PREFIX, RESOLVED_EVENTS, is_allowed_endpoint
from .triggers import build_payload, condition_reason, event_tag, get_trigger

log = logging.getLogger(__name__)

# Pauses while waiting for the database to come back before recording a batch's results.
RECORD_RETRY_PAUSES = (0.5, 1, 2, 4, 8, 15)
STALL_SECONDS = 300  # default of the PUSH_STALL_SECONDS config key
ALERT_WINDOW = timedelta(minutes=10)
COMPONENT_EVENTS = ("component.down", "component.recovered")

_senders: dict[tuple, PushSender] = {}


def _enqueue(job: JobName, *args: Any, delay: float = 0.0) -> None:
    """Enqueue a delivery job; the queue re-runs it if it raises (the retry policy's job_retry)."""
    enqueue(job, *args, delay=delay, retry=retry_policy().job_retry)


# --- the sender ---------------------------------------------------------------------------

def get_sender() -> PushSender:
    """One pooled sender per worker process and key (connections are reused across jobs)."""
    keys = current_keys()
    if keys is None:
        raise KeysUnavailable("no VAPID keys: run `flask --app app vapid generate`")
    cfg = current_app.config
    cache_key = (keys.public_key, keys.subject, cfg.get("PUSH_CA_BUNDLE"), cfg["PUSH_CONCURRENCY"],
                 cfg["PUSH_TIMEOUT"], tuple(cfg.get("PUSH_EXTRA_ORIGINS", ())))
    sender = _senders.get(cache_key)
    if sender is None:
        ssl_context = None
        if cfg.get("PUSH_CA_BUNDLE"):
            ssl_context = ssl.create_default_context(cafile=cfg["PUSH_CA_BUNDLE"])
        app = current_app._get_current_object()

        def allowed(url: str) -> bool:
            # Runs on the sender's loop thread. Its tasks inherit the calling job's context, so
            # the app context is usually there already; pushing one per push costs ~10 us.
            if has_app_context() and current_app._get_current_object() is app:
                return is_allowed_endpoint(url)
            with app.app_context():
                return is_allowed_endpoint(url)

        sender = PushSender(VapidSigner(keys.private_key, keys.subject), is_allowed_endpoint=allowed,
                            concurrency=cfg["PUSH_CONCURRENCY"], timeout=cfg["PUSH_TIMEOUT"],
                            ssl_context=ssl_context)
        _senders[cache_key] = sender
    return sender


def close_senders() -> None:
    """Close every cached sender (their connections and loop threads); the next job makes new ones."""
    senders = list(_senders.values())
    _senders.clear()
    for sender in senders:
        sender.close()


# --- which subscriptions an event goes to ------------------------------------------------------

def matching_ids(event: Event, *, left_since: datetime | None = None) -> Select:
    """Active subscriptions the event is for. With `left_since` (the fan-out time) also those that
    stopped being active since: fan-out counted them, so their batch must record them (as gone)
    or the event's counts never add up and it stays "sending" forever."""
    wanted = Subscription.status == SubscriptionStatus.ACTIVE
    component_ids = (event.context or {}).get("component_ids") or []
    if component_ids:
        chosen = select(subscription_components.c.subscription_id).where(
            subscription_components.c.component_id.in_(component_ids))
        wanted = and_(wanted, or_(Subscription.all_components.is_(True), Subscription.id.in_(chosen)))
    # The visitor's own choices: incidents only (no maintenance events), no "resolved" notices.
    if event.type.startswith(MAINTENANCE_EVENT_PREFIX):
        wanted = and_(wanted, Subscription.notify_maintenance.is_(True))
    if event.type in RESOLVED_EVENTS:
        wanted = and_(wanted, Subscription.notify_resolved.is_(True))
    if left_since is not None:
        # (unsubscribing clears the component filter, so those are matched whatever it was)
        left = and_(Subscription.status != SubscriptionStatus.ACTIVE, Subscription.updated_at >= left_since)
        wanted = or_(wanted, left)
    return select(Subscription.id).where(wanted)


def policy_reason(event: Event) -> str | None:
    """Why the admin's choices keep this event from being sent (notify off, push off, trigger off
    or its conditions unmet), else None. The composer's audience preview asks this too."""
    if not event.notify:
        return "the admin chose not to notify subscribers"
    if not get_settings().enabled:
        return "push notifications are disabled"
    trigger = get_trigger(event.type)
    if not trigger.enabled:
        return f"the {event.type} trigger is off"
    return condition_reason(trigger, event)


def skip_reason(event: Event) -> tuple[EventState, str] | None:
    """(state, reason) when the event must not be sent, else None."""
    policy = policy_reason(event)
    if policy:
        return EventState.SKIPPED, policy
    if event.type in COMPONENT_EVENTS:
        return _debounce_reason(event)
    if event.type == "maintenance.reminder":
        return reminders.stale_reason(event)
    return None


def _debounce_reason(event: Event) -> tuple[EventState, str] | None:
    """Debounce by state, not by job order. RQ schedules delayed jobs in whole seconds and runs
    the ones due in the same second in any order, so when this job runs it decides from what is
    true now: only the component's latest change may announce anything; it does if the component
    is still on that side (down, or not down) and subscribers were last told the other side (the
    last component event whose fan-out went ahead). A down-up blip announces nothing, nor does
    down-up-down after an announced outage; up after an announced outage is news."""
    component = db.session.get(Component, event.component_id, populate_existing=True) \
        if event.component_id is not None else None
    if component is None:
        return EventState.SKIPPED, "the component was deleted"
    later = db.session.execute(
        select(Event.id).where(Event.component_id == component.id, Event.type.in_(COMPONENT_EVENTS),
                               Event.id > event.id).limit(1)
    ).first()
    if later is not None:
        return (EventState.SUPERSEDED,
                "the component changed again within the debounce window; its latest change decides")
    down_now = component.status in DOWN_STATUSES
    if down_now != (event.type == "component.down"):
        return EventState.SKIPPED, f"the component settled on {component.status} within the debounce window"
    last_announced = db.session.execute(
        select(Event.type).where(Event.component_id == event.component_id, Event.type.in_(COMPONENT_EVENTS),
                                 Event.id != event.id, Event.fanned_out_at.is_not(None))
        .order_by(Event.id.desc()).limit(1)
    ).scalar_one_or_none()
    told_down = last_announced == "component.down"
    if down_now == told_down:
        if down_now:
            return EventState.SKIPPED, "subscribers were already told the component is down"
        return EventState.SKIPPED, "subscribers were never told of an outage, so the recovery is not news"
    return None


# --- jobs ---------------------------------------------------------------------------------

def _claim_event(event_id: int, from_states: tuple[str, ...], to_state: str) -> bool:
    now = utcnow()
    claimed = db.session.execute(
        update(Event).where(Event.id == event_id, Event.state.in_(from_states))
        .values(state=to_state, progress_at=now).execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def fan_out(event_id: int) -> dict[str, Any]:
    """Job: split an event's audience into batch jobs."""
    if not _claim_event(event_id, (EventState.PENDING, EventState.DISPATCHED), EventState.FANNING_OUT):
        return {"event": event_id, "fanned_out": False, "why": "already claimed or finished"}
    event = db.session.get(Event, event_id)
    db.session.refresh(event)
    now = utcnow()
    if event.deliver_after and event.deliver_after > now + timedelta(seconds=1):
        # Too early (debounce window still open): put it back and come again when it closes.
        event.state = EventState.DISPATCHED
        db.session.commit()
        _enqueue(JobName.FAN_OUT, event_id, delay=(event.deliver_after - now).total_seconds())
        return {"event": event_id, "fanned_out": False, "why": "waiting for the debounce window"}
    try:
        reason = skip_reason(event)
        if reason is None and current_keys() is None:
            reason = (EventState.SKIPPED, "no VAPID keys configured")
    except KeysUnavailable as exc:
        reason = (EventState.SKIPPED, str(exc)[:200])
    if reason:
        event.state, event.state_reason, event.finished_at = reason[0], reason[1], now
        db.session.commit()
        log.info("event %s %s: %s", event_id, reason[0], reason[1])
        return {"event": event_id, "fanned_out": False, "why": reason[1]}
    total = db.session.execute(select(func.count()).select_from(matching_ids(event).subquery())).scalar_one()
    event.queued_count = total
    event.fanned_out_at = now
    db.session.commit()
    batches = enqueue_batches(event)
    finished = _mark_progress(event_id)
    if not finished:
        db.session.execute(update(Event).where(Event.id == event_id, Event.state == EventState.FANNING_OUT)
                           .values(state=EventState.SENDING, progress_at=utcnow()))
        db.session.commit()
    return {"event": event_id, "fanned_out": True, "subscriptions": total, "batches": batches}


MIN_BATCHES = 8  # spread an event over at least this many jobs, so every worker gets its share
MIN_BATCH_SIZE = 250


def batch_size(event: Event) -> int:
    """PUSH_BATCH_SIZE, or less for smaller events: big batches cost less per push (fewer jobs and
    statements), but an event cut into only a few would leave workers idle at the end."""
    spread = max(MIN_BATCH_SIZE, -(-(event.queued_count or 0) // MIN_BATCHES))
    return max(1, min(current_app.config["PUSH_BATCH_SIZE"], spread))


def enqueue_batches(event: Event) -> int:
    """Walk matching subscription ids in order (keyset pagination: memory stays flat)."""
    size = batch_size(event)
    event_id, base = event.id, matching_ids(event, left_since=event.fanned_out_at)
    last, batches = 0, 0
    while True:
        page = base.where(Subscription.id > last).order_by(Subscription.id).limit(size)
        ids = db.session.execute(page).scalars().all()
        if not ids:
            return batches
        _enqueue(JobName.SEND_BATCH, event_id, ids[0], ids[-1])
        batches += 1
        last = ids[-1]


@dataclass
class _Prepared:
    message: dict[str, Any]  # the classic payload, before encoding
    payload_format: str  # formats.PayloadFormat
    ttl: int
    urgency: str
    topic: str
    _encoded: dict[bool, bytes] = field(default_factory=dict)

    def payload_for(self, endpoint: str) -> bytes:
        """The plaintext for this endpoint: classic or declarative (each encoded once a batch)."""
        declarative = uses_declarative(self.payload_format, endpoint)
        encoded = self._encoded.get(declarative)
        if encoded is None:
            encoded = self._encoded[declarative] = encode_for(self.message, declarative)
        return encoded


def _prepare(event: Event) -> _Prepared:
    trigger = get_trigger(event.type)
    settings = get_settings()
    return _Prepared(build_payload(event, trigger, settings), settings.payload_format or PayloadFormat.AUTO,
                     trigger.ttl, trigger.urgency, _topic(event))


def _topic(event: Event) -> str:
    # Topic (RFC 8030 §5.4) makes the push service replace an undelivered older message of the
    # same incident or component, so an offline phone wakes up to the latest state only.
    return event_tag(event)


def _claim_new(event: Event, lo: int, hi: int) -> list[int]:
    now = utcnow()
    # The anti-join is bounded to [lo, hi] on the deliveries side too: unbounded, PostgreSQL
    # scanned and sorted every delivery row of the event for each batch (quadratic in subscribers).
    candidates = matching_ids(event, left_since=event.fanned_out_at).where(Subscription.id.between(lo, hi)).where(
        ~select(Delivery.id).where(Delivery.event_id == event.id, Delivery.subscription_id.between(lo, hi),
                                   Delivery.subscription_id == Subscription.id).exists()
    )
    # WHERE true: without a WHERE, SQLite parses "ON CONFLICT" as a join constraint of the SELECT.
    source = select(literal(event.id), candidates.subquery().c.id, literal(DeliveryState.SENDING), literal(1),
                    literal(now), literal(now)).where(true())
    stmt = _insert(Delivery).from_select(
        ["event_id", "subscription_id", "outcome", "attempts", "created_at", "updated_at"], source
    ).on_conflict_do_nothing().returning(Delivery.subscription_id)
    ids = list(db.session.execute(stmt).scalars())
    db.session.commit()
    return ids


def _claim_retries(event_id: int, ids: list[int]) -> list[int]:
    """Claim the deliveries waiting for a retry (those still in state retry) and count the
    attempt: ``Delivery.attempts`` becomes the number of the attempt about to be made."""
    now = utcnow()
    claimed = list(db.session.execute(
        update(Delivery).where(Delivery.event_id == event_id, _id_in(Delivery.subscription_id, ids),
                               Delivery.outcome == DeliveryState.RETRY)
        .values(outcome=DeliveryState.SENDING, attempts=Delivery.attempts + 1, updated_at=now)
        .returning(Delivery.subscription_id)
    ).scalars())
    db.session.commit()
    return claimed


def _insert(model):
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model)


_BULK = {"synchronize_session": False}


def _id_in(column, ids: list[int]):
    """`column IN ids`; on PostgreSQL `column = ANY(:ids)`, one array parameter. A batch has up to
    PUSH_BATCH_SIZE ids: as an IN list every statement is re-rendered with that many placeholders
    and re-parsed by psycopg and the server, which cost more CPU than the query itself."""
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(literal(list(ids), ARRAY(Integer)))
    return column.in_(ids)


def send_batch(event_id: int, lo: int, hi: int, attempt: int = 1, only_ids: list[int] | None = None) -> dict[str, int]:
    """Job: deliver one event to the matching subscriptions with ids in [lo, hi].

    ``attempt`` is the number of this attempt (1 for the first send, as ``Delivery.attempts``
    counts); a retry job names the deferred subscriptions in ``only_ids``."""
    event = db.session.get(Event, event_id)
    if event is None or event.state not in DELIVERING_EVENT_STATES:
        return {}
    prepared = _prepare(event)
    claimed = _claim_retries(event_id, only_ids) if only_ids else _claim_new(event, lo, hi)
    if not claimed:
        return {}
    subs = db.session.execute(
        select(Subscription.id, Subscription.endpoint, Subscription.p256dh, Subscription.auth, Subscription.status)
        .where(_id_in(Subscription.id, claimed))
    ).all()
    db.session.commit()  # end the read transaction: no DB locks are held while we wait on the network
    pushes, gone = [], []
    for sid, endpoint, p256dh, auth, status in subs:
        if status != SubscriptionStatus.ACTIVE:
            gone.append(sid)  # unsubscribed between claim and send
            continue
        pushes.append(OutgoingPush(sid, endpoint, b64url_decode(p256dh), b64url_decode(auth),
                                   prepared.payload_for(endpoint),
                                   ttl=prepared.ttl, urgency=prepared.urgency, topic=prepared.topic))
    results = get_sender().send_all(pushes) if pushes else []
    # Unsubscribed or expired while waiting for a retry: gone, not a delivery problem to alert about.
    results += [PushResult(sid, PushOutcome.EXPIRED, None, "subscription no longer active") for sid in gone]
    return _record_results_when_db_returns(event_id, results, attempt=attempt, lo=lo, hi=hi)


def _record_results_when_db_returns(event_id: int, results: list[PushResult], **where: int) -> dict[str, int]:
    """The pushes went out: if the database is briefly unreachable now, wait for it (about 30 s)
    rather than lose what the push services answered. A failed attempt is repeated only after
    checking that every claimed row is still 'sending' (nothing was committed), so outcomes and
    counts are never recorded twice; if it stays down the job fails and RQ retries it."""
    keys = [r.key for r in results]
    error: OperationalError | None = None
    for pause in (0, *RECORD_RETRY_PAUSES):
        time.sleep(pause)
        try:
            if error is not None:
                db.session.rollback()
                still_sending = db.session.execute(
                    select(func.count()).select_from(Delivery).where(
                        Delivery.event_id == event_id, Delivery.subscription_id.in_(keys),
                        Delivery.outcome == DeliveryState.SENDING)
                ).scalar_one()
                if still_sending < len(keys):  # committed before the connection dropped
                    _mark_progress(event_id)
                    return {}
            return record_results(event_id, results, **where)
        except OperationalError as exc:
            error = exc
            log.warning("event %s: database unavailable while recording %d results; retrying (%s)",
                        event_id, len(results), str(exc).splitlines()[0][:200])
    assert error is not None
    raise error


@dataclass
class SortedResults:
    """A batch's results as they are written: final outcomes grouped by (outcome, status code,
    reason), deferred ones grouped by (status code, reason), and the counts per outcome."""

    final: dict[tuple[PushOutcome, int | None, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    retries: dict[tuple[int | None, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    retry_after: float = 0.0  # the longest Retry-After among the deferred
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("sent", "expired", "failed", "retry"), 0))

    @property
    def retry_ids(self) -> list[int]:
        return [sid for ids in self.retries.values() for sid in ids]


def classify_results(results: list[PushResult], attempt: int | None) -> SortedResults:
    """Sort results by what happens next. A deferred push (RETRY) is retried unless the policy
    is exhausted at ``attempt``, when it fails with its last reason; with ``attempt`` None (a test
    push, which is never retried) it is left out."""
    policy = retry_policy()
    out = SortedResults()
    for r in results:
        if r.outcome is PushOutcome.RETRY:
            if attempt is None:
                continue
            if not policy.exhausted(attempt):
                out.retries[(r.status, r.reason[:280])].append(r.key)
                out.retry_after = max(out.retry_after, r.retry_after or 0.0)
                out.counts["retry"] += 1
                continue
            r = PushResult(r.key, PushOutcome.FAILED, r.status,
                           f"gave up after {policy.max_attempts} attempts: {r.reason}")
        out.final[(r.outcome, r.status, r.reason[:300])].append(r.key)
        out.counts[r.outcome.value] += 1
    return out


def write_final_outcomes(final: dict[tuple[PushOutcome, int | None, str], list[int]], now: datetime, *,
                         event_id: int | None = None, default_reason: str = "delivery failed") -> None:
    """Write what the push services said, in bulk: the event's delivery rows (with ``event_id``),
    the subscriptions (sent -> last active now, expired -> never contacted again) and the admin
    alerts for failures. Batch jobs and test pushes both come here; the caller commits."""
    # synchronize_session=False: the session holds none of these rows, and the default would fetch
    # every updated id back to look for them (most of this job's own CPU for a 1000-row batch).
    for (pushed, status, reason), ids in final.items():
        outcome = DeliveryState(pushed)  # a final PushOutcome is the delivery's final state
        if event_id is not None:
            db.session.execute(
                update(Delivery).where(Delivery.event_id == event_id, _id_in(Delivery.subscription_id, ids))
                .values(outcome=outcome, status_code=status, reason=reason or None, updated_at=now,
                        next_attempt_at=None),
                execution_options=_BULK,
            )
        if outcome == DeliveryState.SENT:
            db.session.execute(update(Subscription).where(_id_in(Subscription.id, ids)).values(last_active_at=now),
                               execution_options=_BULK)
        elif outcome == DeliveryState.EXPIRED:
            db.session.execute(
                update(Subscription).where(_id_in(Subscription.id, ids),
                                           Subscription.status == SubscriptionStatus.ACTIVE)
                .values(status=SubscriptionStatus.EXPIRED, status_reason=f"push service answered {status}",
                        updated_at=now),
                execution_options=_BULK,
            )
        elif outcome == DeliveryState.FAILED:
            record_alert(reason or default_reason, count=len(ids))


def schedule_retries(event_id: int, sorted_results: SortedResults, attempt: int, now: datetime) -> float:
    """Put the deferred deliveries in state retry until the policy's delay has passed, keeping the
    push service's answer so admins see why they wait; returns the delay. The caller commits and
    then enqueues the retry job (``_enqueue_retry``)."""
    delay = retry_policy().delay(attempt, sorted_results.retry_after)
    for (status, reason), ids in sorted_results.retries.items():
        db.session.execute(
            update(Delivery).where(Delivery.event_id == event_id, _id_in(Delivery.subscription_id, ids))
            .values(outcome=DeliveryState.RETRY, next_attempt_at=now + timedelta(seconds=delay), updated_at=now,
                    status_code=status, reason=f"will retry: {reason}" if reason else None),
            execution_options=_BULK,
        )
    return delay


def _enqueue_retry(event_id: int, ids: list[int], next_attempt: int, delay: float = 0.0) -> None:
    _enqueue(JobName.SEND_BATCH, event_id, min(ids), max(ids), next_attempt, ids, delay=delay)


def record_results(event_id: int, results: list[PushResult], *, attempt: int, lo: int, hi: int) -> dict[str, int]:
    """Classify a batch's results, write the final ones, schedule the deferred ones, count."""
    now = utcnow()
    sorted_results = classify_results(results, attempt)
    write_final_outcomes(sorted_results.final, now, event_id=event_id)
    retry_ids = sorted_results.retry_ids
    delay = schedule_retries(event_id, sorted_results, attempt, now) if retry_ids else 0.0
    counts = sorted_results.counts
    db.session.execute(
        update(Event).where(Event.id == event_id).values(
            sent_count=Event.sent_count + counts["sent"], expired_count=Event.expired_count + counts["expired"],
            failed_count=Event.failed_count + counts["failed"], progress_at=now,
        )
    )
    db.session.commit()
    if retry_ids:
        _enqueue_retry(event_id, retry_ids, attempt + 1, delay)
    _mark_progress(event_id)
    return counts


def _mark_progress(event_id: int) -> bool:
    """Mark the event done once every targeted subscription has a final outcome."""
    counted = db.session.execute(
        select(Event.id).where(Event.id == event_id, Event.state.in_(DELIVERING_EVENT_STATES),
                               Event.fanned_out_at.is_not(None),
                               Event.sent_count + Event.expired_count + Event.failed_count >= Event.queued_count)
    ).scalar_one_or_none()
    if counted is None:
        # Outcomes still missing: skip the NOT EXISTS below, which reads every delivery row of the
        # event (PostgreSQL runs it before looking at the counts) -- after every batch, that was
        # quadratic in the number of subscribers.
        db.session.commit()
        return False
    done = db.session.execute(
        update(Event).where(
            Event.id == event_id, Event.state.in_(DELIVERING_EVENT_STATES), Event.fanned_out_at.is_not(None),
            Event.sent_count + Event.expired_count + Event.failed_count >= Event.queued_count,
            ~select(Delivery.id).where(Delivery.event_id == event_id,
                                       Delivery.outcome.in_(OPEN_DELIVERY_STATES)).exists(),
        ).values(state=EventState.DONE, finished_at=utcnow(),
                 # seen/opened reports were capped at what it targeted while sending (push.seen)
                 shown_count=_at_most_sent(Event.shown_count), opened_count=_at_most_sent(Event.opened_count))
    ).rowcount
    if done == 1:  # ... and the latency histogram keeps no more entries than the clamped shown count
        trim_latencies(event_id, db.session.execute(select(Event.shown_count).where(Event.id == event_id)).scalar_one())
    db.session.commit()
    return done == 1


def _at_most_sent(column):
    return case((column > Event.sent_count, Event.sent_count), else_=column)


def record_alert(reason: str, count: int = 1) -> None:
    """Failed deliveries surface to admins: one alert per reason per 10 minutes (counts always grow)."""
    key = reason.split(":")[0][:300] if reason else "delivery failed"
    now = utcnow()
    alert = db.session.execute(select(AdminAlert).where(AdminAlert.reason == key)).scalar_one_or_none()
    if alert is None:
        db.session.add(AdminAlert(reason=key, count=count, first_seen_at=now, last_seen_at=now,
                                  last_alerted_at=now, alerts=1))
        log.warning("push delivery alert: %s (%d subscription(s))", key, count)
        return
    alert.count += count
    alert.last_seen_at = now
    if alert.last_alerted_at <= now - ALERT_WINDOW:
        alert.last_alerted_at = now
        alert.alerts += 1
        alert.acknowledged_at = None
        log.warning("push delivery alert: %s (%d more)", key, count)


# --- recovery (the sweeper calls this) ---------------------------------------------------------

def stall_seconds() -> float:
    """How long a fan-out or batch may show no progress before it counts as stalled (dead worker)."""
    return float(current_app.config.get("PUSH_STALL_SECONDS", STALL_SECONDS))


def requeue_stalled() -> int:
    """Re-enqueue work whose job was lost (Redis flushed, worker killed). Safe to repeat."""
    now = utcnow()
    stale = now - timedelta(seconds=stall_seconds())
    count = 0
    lost_fan_outs = db.session.execute(
        select(Event.id).where(
            or_(and_(Event.state == EventState.DISPATCHED, Event.deliver_after < stale),
                and_(Event.state == EventState.FANNING_OUT, Event.progress_at < stale))
        ).limit(100)
    ).scalars().all()
    for event_id in lost_fan_outs:
        db.session.execute(update(Event).where(Event.id == event_id)
                           .values(state=EventState.DISPATCHED, progress_at=now))
        db.session.commit()
        _enqueue(JobName.FAN_OUT, event_id)
        count += 1
    stalled = db.session.execute(
        select(Event.id).where(Event.state == EventState.SENDING, Event.progress_at < stale).limit(100)
    ).scalars().all()
    for event_id in stalled:
        _enqueue(JobName.RESUME_EVENT, event_id)
        count += 1
    return count


def resume_event(event_id: int) -> dict[str, int]:
    """Finish an event whose batches stopped: unclaimed ranges again, overdue retries again.
    Rows left 'sending' by a dead worker are failed, not resent: we cannot know whether the push
    went out, and a duplicate alert is worse than a missing one (the Topic header and the tag
    would collapse it on most devices, but not all)."""
    event = db.session.get(Event, event_id)
    if event is None or event.state != EventState.SENDING:
        return {}
    now = utcnow()
    db.session.execute(update(Event).where(Event.id == event_id).values(progress_at=now))
    interrupted = list(db.session.execute(
        update(Delivery).where(Delivery.event_id == event_id, Delivery.outcome == DeliveryState.SENDING,
                               Delivery.updated_at < now - timedelta(seconds=stall_seconds()))
        .values(outcome=DeliveryState.FAILED, reason="interrupted: the worker stopped while sending; not resent",
                updated_at=now)
        .returning(Delivery.subscription_id)
    ).scalars())
    if interrupted:
        db.session.execute(update(Event).where(Event.id == event_id)
                           .values(failed_count=Event.failed_count + len(interrupted)))
    db.session.commit()
    if not _unclaimed_exist(event):
        _settle_targeted(event_id)
        batches = 0
    else:
        batches = enqueue_batches(event)
    overdue_rows = db.session.execute(
        select(Delivery.subscription_id, Delivery.attempts).where(
            Delivery.event_id == event_id, Delivery.outcome == DeliveryState.RETRY,
            Delivery.next_attempt_at < now - timedelta(seconds=60))
    ).all()
    overdue = [row[0] for row in overdue_rows]
    if overdue:
        # Carry the attempt count on, so a lost retry job never resets the policy's attempt budget.
        _enqueue_retry(event_id, overdue, max(row[1] for row in overdue_rows) + 1)
    _mark_progress(event_id)
    return {"interrupted": len(interrupted), "batches": batches, "retries": len(overdue)}


def _unclaimed_exist(event: Event) -> bool:
    """Whether a subscription the event is for has no delivery row yet (a batch still to run)."""
    unclaimed = matching_ids(event, left_since=event.fanned_out_at).where(
        ~select(Delivery.id).where(Delivery.event_id == event.id, Delivery.subscription_id == Subscription.id)
        .exists()).limit(1)
    return db.session.execute(unclaimed).first() is not None


def _settle_targeted(event_id: int) -> None:
    """Every subscription the event is still for has a delivery row, yet the counts fall short of
    what fan-out counted: some changed their choices or components between the count and their
    batch, and were rightly not sent to. What was targeted is then the rows there are."""
    claimed = select(func.count()).select_from(Delivery).where(Delivery.event_id == event_id).scalar_subquery()
    db.session.execute(update(Event).where(Event.id == event_id, Event.queued_count > claimed)
                       .values(queued_count=claimed))
    db.session.commit()


# --- test pushes --------------------------------------------------------------------------

def test_payload(title: str | None = None, body: str | None = None, endpoint: str = "") -> bytes:
    """A test push's plaintext, in the shape ``endpoint`` gets under the payload_format setting."""
    settings = get_settings()
    site = current_app.config["SITE_NAME"]
    message = {
        "title": title or f"{site}: test notification",
        "body": body or f"Push notifications from {site} work on this device.",
        "icon": icon_url(settings), "badge": badge_url(settings), "url": absolute_url("/"),
        "tag": "test", "event": "test", "timestamp": int(time.time() * 1000),
    }
    return encode_for(message, uses_declarative(settings.payload_format or PayloadFormat.AUTO, endpoint))


def send_test(subscription_ids: list[int], title: str | None = None, body: str | None = None) -> list[PushResult]:
    """Send a test push now to the given subscriptions and record what the push service said
    (the same write step as a batch's, without delivery rows: a test belongs to no event)."""
    subs = db.session.execute(
        select(Subscription).where(Subscription.id.in_(subscription_ids),
                                   Subscription.status == SubscriptionStatus.ACTIVE)
    ).scalars().all()
    pushes = [OutgoingPush(s.id, s.endpoint, b64url_decode(s.p256dh), b64url_decode(s.auth),
                           test_payload(title, body, s.endpoint),
                           ttl=3600, urgency="normal", topic="test") for s in subs]
    results = get_sender().send_all(pushes)
    write_final_outcomes(classify_results(results, None).final, utcnow(), default_reason="test push failed")
    db.session.commit()
    return results


def queue_test_push(subscription: Subscription) -> None:
    """Queue a test push to one subscription (the admin UI, the admin API and the visitor's
    "Send me a test" all come here): a 400 service error when it is not active, a 503 when the
    queue is unreachable."""
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise ValidationError(f"subscription {subscription.id} is {subscription.status}; "
                              "only active subscriptions can receive a test push")
    try:
        enqueue(JobName.SEND_TEST, subscription.id)
    except EnqueueError:
        raise ServiceError("the job queue is unavailable; try again shortly", status_code=503) from None


def send_test_job(subscription_id: int) -> dict[str, Any]:
    results = send_test([subscription_id])
    return {"results": [(r.key, r.outcome.value, r.status, r.reason) for r in results]}
