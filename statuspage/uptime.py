"""90-day uptime per component, from the recorded component status history.

The history is `component_status_changes` (one row per change, written by
`components.set_component_status` in the same transaction as the change, and one at creation);
it is never re-derived from incident text. Days are calendar days in SITE_TIMEZONE, each from
its own local midnight to the next (23 or 25 hours across a DST change). A component has no data
before its history starts (its creation, or the migration that introduced the history): those
days say "no data" and do not count, rather than count as 100 %.

Uptime weighting, as Statuspage documents it for its uptime showcase ("Display historical
uptime of components", https://support.atlassian.com/statuspage/docs/display-historical-uptime-of-components/,
formerly help.statuspage.io/help/uptime-calendar): time in major outage counts fully as
downtime, time in partial outage counts 30 %, degraded performance and maintenance do not count:
uptime = 1 - (major + 0.3 * partial) / observed time. A day's bar is coloured by the worst status
the component had that day. A group rolls up its components: worst status per day, and the
uptime of all its components' observed time together.

Everything here is a pure function of the database and `now`: the published snapshot can render
it like any view. The bars move at local midnight without any database change; a snapshot
publisher re-renders `uptime_paths()` at `next_day_boundary(now)` (cheap: one query over the
history of the window, one over its incidents).
"""
from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from math import floor

from sqlalchemy import and_, func, or_, select, union_all

from .components import STATUS_RANK, list_components, list_groups, worst_status
from .extensions import db
from .models import ComponentGroup, ComponentStatusChange, Incident, incident_components
from .timeutil import site_tz, utcnow

WINDOW_DAYS = 90
# Statuspage's uptime showcase weighting (see the module docstring).
DOWNTIME_WEIGHT = {"major_outage": 1.0, "partial_outage": 0.3}
NO_DATA = "no_data"
STATUS_LABELS = {
    "operational": "Operational",
    "under_maintenance": "Under maintenance",
    "degraded_performance": "Degraded performance",
    "partial_outage": "Partial outage",
    "major_outage": "Major outage",
    NO_DATA: "No data",
}


@dataclass(frozen=True)
class DayIncident:
    id: int
    name: str
    kind: str
    impact: str


@dataclass(slots=True)
class Day:
    """One calendar day of one row; `settle()` computes its totals once it is filled (the page
    reads them for 3,000+ bars: properties recomputed per read, or functools.cached_property
    with its lock, were a third of the page's time)."""

    date: date
    start: datetime  # naive UTC, the day's local midnight
    end: datetime  # naive UTC, the next local midnight (or now, for today)
    seconds: dict[str, float] = field(default_factory=dict)  # time in each status, observed part only
    incidents: list[DayIncident] = field(default_factory=list)
    status: str = NO_DATA  # the worst status with time in the day
    observed: float = 0.0
    downtime: float = 0.0

    def settle(self) -> Day:
        if not self.seconds:  # before the history starts
            return self
        present = [s for s, secs in self.seconds.items() if secs > 0]
        self.status = worst_status(present) if present else NO_DATA
        self.observed = sum(self.seconds.values())
        self.downtime = sum(self.seconds.get(s, 0.0) * w for s, w in DOWNTIME_WEIGHT.items())
        return self


@dataclass
class UptimeRow:
    """One component's (or a group's rolled-up) days, settled; its totals follow from them."""

    id: int
    name: str
    days: list[Day]
    is_group: bool = False
    members: list[UptimeRow] = field(default_factory=list)
    observed: float = field(init=False)
    downtime: float = field(init=False)

    def __post_init__(self) -> None:
        self.observed = sum(d.observed for d in self.days)
        self.downtime = sum(d.downtime for d in self.days)

    @property
    def uptime_percent(self) -> float | None:
        """Rounded down to two decimals, so any downtime never shows as 100.00 %."""
        if self.observed <= 0:
            return None
        # The epsilon keeps an exact 95 % from flooring to 94.99 through float rounding.
        return floor((1 - self.downtime / self.observed) * 10000 + 1e-9) / 100

    @property
    def since(self) -> date | None:
        """The first day with data (later than the window's start for a new component)."""
        return next((d.date for d in self.days if d.status != NO_DATA), None)


@dataclass
class Uptime:
    start: datetime
    end: datetime
    dates: list[date]
    rows: dict[int, UptimeRow]  # component id -> row (showcased components only)
    groups: dict[int, UptimeRow]  # group id -> roll-up of its showcased components


def day_bounds(now: datetime, days: int = WINDOW_DAYS) -> list[tuple[date, datetime, datetime]]:
    """The last `days` local calendar days up to today, as (date, start, end) in naive UTC."""
    tz = site_tz()
    today = now.replace(tzinfo=UTC).astimezone(tz).date()
    first = today - timedelta(days=days - 1)

    def midnight(d: date) -> datetime:
        return datetime.combine(d, time.min, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)

    bounds = []
    for n in range(days):
        d = first + timedelta(days=n)
        bounds.append((d, midnight(d), min(midnight(d + timedelta(days=1)), now)))
    return bounds


def next_day_boundary(now: datetime | None = None) -> datetime:
    """When the bars next change without any database change: the next local midnight (naive
    UTC). A snapshot publisher re-renders `uptime_paths()` then."""
    now = now or utcnow()
    tz = site_tz()
    tomorrow = now.replace(tzinfo=UTC).astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time.min, tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def _history(start: datetime, end: datetime) -> dict[int, list[tuple[float, str]]]:
    """Every component's status changes inside the window plus the last one before it (what it
    was in when the window opened), in one statement; times as POSIX seconds for the day split."""
    csc = ComponentStatusChange.__table__
    inside = select(csc.c.component_id, csc.c.changed_at, csc.c.id, csc.c.status).where(
        csc.c.changed_at >= start, csc.c.changed_at < end)
    before = (select(csc.c.component_id, func.max(csc.c.changed_at).label("last"))
              .where(csc.c.changed_at < start).group_by(csc.c.component_id).subquery())
    opening = select(csc.c.component_id, csc.c.changed_at, csc.c.id, csc.c.status).join(
        before, and_(csc.c.component_id == before.c.component_id, csc.c.changed_at == before.c.last))
    rows = db.session.execute(union_all(inside, opening)).all()
    ordered: dict[int, list[tuple[float, int, str]]] = defaultdict(list)
    for component_id, changed_at, row_id, status in rows:
        ordered[component_id].append((_seconds(changed_at), row_id, status))
    # In time order, the later row first-written-last at the same instant.
    return {cid: [(at, status) for at, _, status in sorted(changes)] for cid, changes in ordered.items()}


def _seconds(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def _incidents(start: datetime, end: datetime) -> list[tuple[DayIncident, int, datetime, datetime]]:
    """(incident, component id, opened, closed) for the incidents and maintenances that touched
    the window, one query joined with their components (plain rows: building ORM objects for
    them cost more than the rest of the day split)."""
    ic = incident_components
    rows = db.session.execute(
        select(Incident.id, Incident.name, Incident.kind, Incident.impact, Incident.created_at, Incident.started_at,
               Incident.resolved_at, ic.c.component_id)
        .join(ic, ic.c.incident_id == Incident.id)
        .where(
            or_(Incident.resolved_at.is_(None), Incident.resolved_at >= start),
            or_(and_(Incident.kind == "incident", Incident.created_at < end),
                and_(Incident.kind == "maintenance", Incident.started_at.is_not(None), Incident.started_at < end)),
        )
        .order_by(Incident.id)
    ).all()
    spans = []
    for incident_id, name, kind, impact, created_at, started_at, resolved_at, component_id in rows:
        opened = created_at if kind == "incident" else started_at
        spans.append((DayIncident(id=incident_id, name=name, kind=kind, impact=impact), component_id, opened,
                      resolved_at or end))
    return spans


def _fill_days(days: list[Day], edges: list[tuple[float, float]], changes: list[tuple[float, str]],
               now: float) -> None:
    """Split the history's segments over the days (both sorted: one pass, in float seconds:
    datetime arithmetic was most of the time with a busy history)."""
    ends = [at for at, _ in changes[1:]] + [now]
    i, count = 0, len(changes)
    for day, (day_start, day_end) in zip(days, edges, strict=True):
        while i < count and ends[i] <= day_start:
            i += 1
        j = i
        seconds = day.seconds
        while j < count and changes[j][0] < day_end:
            overlap = min(ends[j], day_end) - max(changes[j][0], day_start)
            if overlap > 0:
                status = changes[j][1]
                seconds[status] = seconds.get(status, 0.0) + overlap
            j += 1


def build_uptime(now: datetime | None = None, days: int = WINDOW_DAYS) -> Uptime:
    now = now or utcnow()
    bounds = day_bounds(now, days)
    edges = [(_seconds(start), _seconds(end)) for _, start, end in bounds]
    day_starts = [start for start, _ in edges]
    start, end = bounds[0][1], now
    components = [c for c in list_components() if c.showcase]
    history = _history(start, end)
    incidents = _incidents(start, end)
    rows: dict[int, UptimeRow] = {}
    for component in components:
        row_days = [Day(date=d, start=s, end=e) for d, s, e in bounds]
        _fill_days(row_days, edges, history.get(component.id, []), _seconds(now))
        for day in row_days:
            day.settle()
        rows[component.id] = UptimeRow(id=component.id, name=component.name, days=row_days)
    for ref, component_id, opened, closed in incidents:
        row = rows.get(component_id)
        if row is None:
            continue
        # The days it was open: from the one it opened in (or the first) to the one it closed in.
        closed_at = _seconds(closed)
        for n in range(max(bisect_right(day_starts, _seconds(opened)) - 1, 0), len(edges)):
            if edges[n][0] >= closed_at:
                break
            if ref not in row.days[n].incidents:
                row.days[n].incidents.append(ref)
    groups = {}
    by_group: dict[int, list[UptimeRow]] = defaultdict(list)
    for component in components:  # in position order, as the groups list them
        if component.group_id is not None:
            by_group[component.group_id].append(rows[component.id])
    for group in list_groups():
        if by_group.get(group.id):
            groups[group.id] = roll_up(group, by_group[group.id])
    return Uptime(start=start, end=end, dates=[b[0] for b in bounds], rows=rows, groups=groups)


def roll_up(group: ComponentGroup, members: list[UptimeRow]) -> UptimeRow:
    """A group's days: each status's time summed over its components (so its uptime weighs all
    their observed time together), the worst status of any of them, every incident once."""
    days = []
    for n, first in enumerate(members[0].days):
        day = Day(date=first.date, start=first.start, end=first.end)
        for member in members:
            member_day = member.days[n]
            for status, secs in member_day.seconds.items():
                day.seconds[status] = day.seconds.get(status, 0.0) + secs
            for ref in member_day.incidents:
                if ref not in day.incidents:
                    day.incidents.append(ref)
        days.append(day.settle())
    return UptimeRow(id=group.id, name=group.name, days=days, is_group=True, members=members)


# --- wording shared by the page, its accessible labels and the JSON ------------------------

def duration_text(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def day_summary(day: Day) -> str:
    """What a day's bar says in words (its accessible name and the first line of its details)."""
    label = f"{day.date:%b} {day.date.day}, {day.date.year}"
    status = day.status
    if status == NO_DATA:
        return f"{label}: no data"
    parts = [f"{STATUS_LABELS[s].lower()} {duration_text(day.seconds[s])}"
             for s in sorted(day.seconds, key=STATUS_RANK.__getitem__, reverse=True)
             if s != "operational" and day.seconds[s] >= 30]
    text = f"{label}: " + ("; ".join(parts) if parts else "no downtime")
    if day.incidents:
        n = len(day.incidents)
        text += f"; {n} incident" + ("s" if n > 1 else "")
    return text


def uptime_text(row: UptimeRow) -> str:
    percent = row.uptime_percent
    return "no data yet" if percent is None else f"{percent:.2f} % uptime"


def uptime_paths() -> list[str]:
    """Public paths whose content depends on the uptime bars (re-render at the day boundary)."""
    return ["/", "/api/v2/uptime.json"]
