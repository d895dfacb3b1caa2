"""Components and component groups: the service functions the UI, API and jobs share."""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from flask import current_app
from sqlalchemy import delete, func, select, update

from . import validation as v
from .errors import ConflictError, NotFoundError, ValidationError
from .events import record_event
from .extensions import db
from .models import (
    COMPONENT_STATUSES,
    DOWN_STATUSES,
    Component,
    ComponentGroup,
    ComponentStatusChange,
    StatusSource,
)
from .timeutil import utcnow

COMPONENT_FIELDS = ("name", "description", "status", "group_id", "position", "showcase")
GROUP_FIELDS = ("name", "description", "position")


def list_components() -> list[Component]:
    return list(
        db.session.execute(
            select(Component).order_by(Component.position, Component.id)
        ).scalars()
    )


def list_groups() -> list[ComponentGroup]:
    return list(
        db.session.execute(select(ComponentGroup).order_by(ComponentGroup.position, ComponentGroup.id)).scalars()
    )


def get_component(component_id: int) -> Component:
    component = db.session.get(Component, component_id)
    if component is None:
        raise NotFoundError(f"component {component_id} not found")
    return component


def get_group(group_id: int) -> ComponentGroup:
    group = db.session.get(ComponentGroup, group_id)
    if group is None:
        raise NotFoundError(f"component group {group_id} not found")
    return group


def _group_id(data: dict) -> int | None:
    group_id = v.integer(data, "group_id", minimum=1, maximum=v.MAX_ID)
    if group_id is not None and db.session.get(ComponentGroup, group_id) is None:
        raise ValidationError(f"group_id {group_id} does not exist", field="group_id")
    return group_id


def _same_name(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def ensure_unique_component_name(name: str, group_id: int | None, exclude_id: int | None = None) -> None:
    """Component names are unique within their group (ignoring case): "API" may sit in both "EU" and
    "US", but two "API" rows side by side can't be told apart by visitors, subscribers or monitoring."""
    rows = db.session.execute(select(Component.id, Component.name).where(
        Component.group_id.is_(None) if group_id is None else Component.group_id == group_id)).all()
    if any(_same_name(row.name, name) and row.id != exclude_id for row in rows):
        where = "without a group" if group_id is None else "in this group"
        raise ConflictError(f"A component named “{name}” already exists {where}: pick another name.",
                            field="name")


def ensure_unique_group_name(name: str, exclude_id: int | None = None) -> None:
    rows = db.session.execute(select(ComponentGroup.id, ComponentGroup.name)).all()
    if any(_same_name(row.name, name) and row.id != exclude_id for row in rows):
        raise ConflictError(f"A group named “{name}” already exists: pick another name.", field="name")


def create_component(data: dict[str, Any]) -> Component:
    v.require_object(data, COMPONENT_FIELDS, what="component")
    name = v.string(data, "name", required=True, max_length=200)
    status = v.choice(data, "status", COMPONENT_STATUSES, default="operational")
    position = v.integer(data, "position", minimum=0, maximum=100000)
    if position is None:
        position = (db.session.execute(select(func.max(Component.position))).scalar() or 0) + 1
    group_id = _group_id(data)
    ensure_unique_component_name(name, group_id)
    component = Component(
        name=name,
        description=v.string(data, "description", max_length=2000),
        status=status,
        group_id=group_id,
        position=position,
        showcase=v.boolean(data, "showcase", default=True),
    )
    db.session.add(component)
    db.session.flush()
    # The uptime history starts with the status the component was created in.
    db.session.add(ComponentStatusChange(component_id=component.id, status=status, changed_at=component.created_at))
    return component


def update_component(component: Component, data: dict[str, Any]) -> Component:
    """Apply a partial update; a status change records component.down/recovered events."""
    v.require_object(data, COMPONENT_FIELDS, what="component")
    if "name" in data:
        component.name = v.string(data, "name", required=True, max_length=200)
    if "description" in data:
        component.description = v.string(data, "description", max_length=2000, allow_empty=True)
    if "group_id" in data:
        component.group_id = _group_id(data)
    if "name" in data or "group_id" in data:
        ensure_unique_component_name(component.name, component.group_id, exclude_id=component.id)
    if "position" in data:
        component.position = v.integer(data, "position", minimum=0, maximum=100000, required=True)
    if "showcase" in data:
        component.showcase = v.boolean(data, "showcase", default=True)
    if "status" in data:
        status = v.choice(data, "status", COMPONENT_STATUSES, required=True)
        set_component_status(component, status)
    component.updated_at = utcnow()
    db.session.flush()
    return component


def delete_component(component: Component) -> None:
    # Explicitly, not only by the foreign key's ON DELETE CASCADE: SQLite enforces foreign keys
    # only when asked to, and a reused id must never inherit a deleted component's history.
    db.session.execute(delete(ComponentStatusChange).where(ComponentStatusChange.component_id == component.id))
    db.session.delete(component)


def set_component_status(component: Component, status: str, *, incident_id: int | None = None,
                         notify: bool = True, source: StatusSource = StatusSource.MANUAL) -> dict[str, Any] | None:
    """Change a component's status, recording the event; returns Statuspage's affected-component dict.

    `source`: MANUAL (an admin: the status then stays until handed back to monitoring), MONITORING
    (integrations, which call this only for components monitoring owns) or MAINTENANCE (a window)."""
    if status not in COMPONENT_STATUSES:
        raise ValidationError(f"status must be one of: {', '.join(COMPONENT_STATUSES)}", field="status")
    if source is StatusSource.MANUAL:
        hold_for_admin(component)
    old = component.status
    if old == status:
        return None
    component.status = status
    component.updated_at = utcnow()
    # Uptime history, in the same transaction as the change (admins, maintenance, integrations).
    db.session.add(ComponentStatusChange(component_id=component.id, status=status, changed_at=component.updated_at))
    event_type = None
    if status in DOWN_STATUSES and old not in DOWN_STATUSES:
        event_type = "component.down"
    elif status == "operational" and _last_component_event(component.id) == "component.down":
        # Recovered means back to operational after being down, even via degraded_performance.
        event_type = "component.recovered"
    if event_type:
        # Component events wait out the debounce window so flapping sends only the settled state.
        record_event(
            event_type,
            component_id=component.id,
            incident_id=incident_id,
            notify=notify,
            delay_seconds=debounce_seconds(),
            context={
                "component_name": component.name,
                "component_ids": [component.id],
                "status": status,
                "old_status": old,
            },
        )
    return {"code": component.id, "name": component.name, "old_status": old, "new_status": status}


def hold_for_admin(component: Component) -> None:
    """An admin's status wins over monitoring until handed back. The owner is written first: that write
    takes the component's lock (the database's write lock on SQLite), so the status read next is the one
    monitoring committed last — never a stale copy that would make the admin's change look like none."""
    db.session.flush()
    db.session.execute(update(Component).where(Component.id == component.id)
                       .values(status_owner=StatusSource.MANUAL.value).execution_options(synchronize_session=False))
    db.session.refresh(component, ["status", "status_owner"])


def _last_component_event(component_id: int) -> str | None:
    from .models import Event

    return db.session.execute(
        select(Event.type).where(Event.component_id == component_id,
                                 Event.type.in_(("component.down", "component.recovered")))
        .order_by(Event.id.desc()).limit(1)
    ).scalar_one_or_none()


def debounce_seconds() -> int:
    from .models import PushSettings

    settings = db.session.get(PushSettings, 1)
    if settings is not None and settings.debounce_seconds is not None:
        return settings.debounce_seconds
    return current_app.config["PUSH_DEBOUNCE_SECONDS"]


def create_group(data: dict[str, Any]) -> ComponentGroup:
    v.require_object(data, GROUP_FIELDS, what="component group")
    name = v.string(data, "name", required=True, max_length=200)
    ensure_unique_group_name(name)
    group = ComponentGroup(
        name=name,
        description=v.string(data, "description", max_length=2000),
        position=v.integer(data, "position", minimum=0, maximum=100000, default=0),
    )
    db.session.add(group)
    db.session.flush()
    return group


def update_group(group: ComponentGroup, data: dict[str, Any]) -> ComponentGroup:
    v.require_object(data, GROUP_FIELDS, what="component group")
    if "name" in data:
        group.name = v.string(data, "name", required=True, max_length=200)
        ensure_unique_group_name(group.name, exclude_id=group.id)
    if "description" in data:
        group.description = v.string(data, "description", max_length=2000, allow_empty=True)
    if "position" in data:
        group.position = v.integer(data, "position", minimum=0, maximum=100000, required=True)
    db.session.flush()
    return group


def delete_group(group: ComponentGroup) -> None:
    """Delete a group; its components stay, without a group. Refused when one of them would then
    sit beside an ungrouped component of the same name (names are unique within their group)."""
    ungrouped = db.session.execute(select(Component.name).where(Component.group_id.is_(None))).scalars().all()
    for component in group.components:
        if any(_same_name(component.name, name) for name in ungrouped):
            raise ConflictError(f"Deleting “{group.name}” would put its “{component.name}” next to another "
                                f"“{component.name}” without a group: rename one of them first.", field="name")
    for component in group.components:
        component.group_id = None
    db.session.delete(group)


# --- ordering: the page shows groups and ungrouped components interleaved by position, and each
# group's components by position (summary.build_summary). Moves renumber one list 1..n. ---------

ORDER_DIRECTIONS = ("up", "down")


def top_level() -> list[Component | ComponentGroup]:
    """Groups and ungrouped components in page order."""
    entries = [(g.position, 0, g.id, g) for g in list_groups()]
    entries += [(c.position, 1, c.id, c) for c in list_components() if c.group_id is None]
    return [entry[3] for entry in sorted(entries, key=lambda e: e[:3])]


def group_members(group_id: int) -> list[Component]:
    return [c for c in list_components() if c.group_id == group_id]


def order_token(item: Component | ComponentGroup) -> str:
    return f"g{item.id}" if isinstance(item, ComponentGroup) else f"c{item.id}"


def _siblings(item: Component | ComponentGroup) -> list[Component | ComponentGroup]:
    if isinstance(item, Component) and item.group_id is not None:
        return list(group_members(item.group_id))
    return top_level()


def _renumber(items: list[Component | ComponentGroup]) -> None:
    for position, item in enumerate(items, start=1):
        if item.position != position:
            item.position = position
            if isinstance(item, Component):
                item.updated_at = utcnow()


def move_item(item: Component | ComponentGroup, direction: str) -> int:
    """Move a component (within its group) or a group one place up or down; returns its new
    1-based place. At either end it stays."""
    if direction not in ORDER_DIRECTIONS:
        raise ValidationError("direction must be up or down", field="direction")
    siblings = _siblings(item)
    index = siblings.index(item)
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(siblings):
        siblings[index], siblings[other] = siblings[other], siblings[index]
        index = other
    _renumber(siblings)
    db.session.flush()
    return index + 1


def reorder(group_id: int | None, tokens: list[str]) -> None:
    """Set the order of one list (the page's top level, or one group's components) from its items'
    tokens ("g3" a group, "c5" a component), as a drag and drop leaves it. The tokens must name
    exactly that list's items: a list changed meanwhile (another admin) is refused, not guessed."""
    siblings: list[Component | ComponentGroup] = top_level() if group_id is None else list(group_members(group_id))
    by_token = {order_token(item): item for item in siblings}
    if len(tokens) != len(set(tokens)) or set(tokens) != set(by_token):
        raise ConflictError("The list changed since the page was loaded: reload it and try again.", field="order")
    _renumber([by_token[token] for token in tokens])
    db.session.flush()


# Worst last, in Statuspage's order of severity (maintenance is better than any degradation).
SEVERITY_ORDER = ("operational", "under_maintenance", "degraded_performance", "partial_outage", "major_outage")
STATUS_RANK = {s: i for i, s in enumerate(SEVERITY_ORDER)}


def worst_status(statuses: Iterable[str], default: str = "operational") -> str:
    return max(statuses, key=STATUS_RANK.__getitem__, default=default)


class Indicator(StrEnum):
    """The page indicator of /api/v2/status.json."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    MAINTENANCE = "maintenance"


# Atlassian's support page "Top-level status and incident impact calculations"
# (https://support.atlassian.com/statuspage/docs/top-level-status-and-incident-impact-calculations/)
# lists seven top-level statuses with their colours; the indicator is the colour's API name
# (green none, yellow minor, orange major, red critical, blue maintenance).
ALL_SYSTEMS_OPERATIONAL = (Indicator.NONE, "All Systems Operational")
MAJOR_SYSTEM_OUTAGE = (Indicator.CRITICAL, "Major System Outage")
PARTIAL_SYSTEM_OUTAGE = (Indicator.MAJOR, "Partial System Outage")
MINOR_SERVICE_OUTAGE = (Indicator.MINOR, "Minor Service Outage")
DEGRADED_SYSTEM_SERVICE = (Indicator.MINOR, "Degraded System Service")
PARTIALLY_DEGRADED_SERVICE = (Indicator.MINOR, "Partially Degraded Service")
SERVICE_UNDER_MAINTENANCE = (Indicator.MAINTENANCE, "Service Under Maintenance")

# The page's rules, by number of components. One component: its status names the page.
ONE_COMPONENT = {
    "operational": ALL_SYSTEMS_OPERATIONAL,
    "under_maintenance": SERVICE_UNDER_MAINTENANCE,
    "degraded_performance": PARTIALLY_DEGRADED_SERVICE,
    "partial_outage": PARTIAL_SYSTEM_OUTAGE,
    "major_outage": MAJOR_SYSTEM_OUTAGE,
}
# Two or more: all in the same status first...
ALL_COMPONENTS = {
    "operational": ALL_SYSTEMS_OPERATIONAL,
    "major_outage": MAJOR_SYSTEM_OUTAGE,
    "partial_outage": PARTIAL_SYSTEM_OUTAGE,
    "degraded_performance": DEGRADED_SYSTEM_SERVICE,
    "under_maintenance": SERVICE_UNDER_MAINTENANCE,
}
# ...then the worst status any of them is in (one of four in major_outage is a partial outage).
ANY_COMPONENT = (
    ("major_outage", PARTIAL_SYSTEM_OUTAGE),
    ("partial_outage", MINOR_SERVICE_OUTAGE),
    ("degraded_performance", PARTIALLY_DEGRADED_SERVICE),
    ("under_maintenance", SERVICE_UNDER_MAINTENANCE),
)
# No components: "always All Systems Operational (unless there is an active incident)"; an active
# incident shows the top-level status of its impact's colour, an active maintenance the blue one.
INCIDENT_IMPACT = {
    "critical": MAJOR_SYSTEM_OUTAGE,
    "major": PARTIAL_SYSTEM_OUTAGE,
    "minor": MINOR_SERVICE_OUTAGE,
}
IMPACT_RANK = {"none": 0, "minor": 1, "major": 2, "critical": 3}


def overall_status(statuses: Iterable[str], unresolved_impacts: Iterable[str] = (),
                   maintenance_in_progress: bool = False) -> tuple[Indicator, str]:
    """Statuspage's top-level status (indicator, description), computed from all the page's
    component statuses; unresolved incidents and maintenance count only on a page without
    components (with components, an incident shows through the statuses it sets)."""
    statuses = list(statuses)
    if len(statuses) == 1:
        return ONE_COMPONENT[statuses[0]]
    if statuses:
        distinct = set(statuses)
        if len(distinct) == 1:
            return ALL_COMPONENTS[statuses[0]]
        for status, result in ANY_COMPONENT:
            if status in distinct:
                return result
        return ALL_SYSTEMS_OPERATIONAL
    worst = max(unresolved_impacts, key=lambda impact: IMPACT_RANK.get(impact, 0), default="none")
    if worst in INCIDENT_IMPACT:
        return INCIDENT_IMPACT[worst]
    if maintenance_in_progress:
        return SERVICE_UNDER_MAINTENANCE
    return ALL_SYSTEMS_OPERATIONAL
