"""What the status page shows right now; shared by the HTML page and the v2 JSON API."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from .components import list_components, list_groups, overall_status
from .extensions import db
from .incidents import active_maintenances, list_incidents, upcoming_maintenances
from .models import Component, ComponentGroup, Incident, User

# A page where nothing was ever set up still needs a page.updated_at (upstream always has one).
EPOCH = datetime(1970, 1, 1)


@dataclass
class Summary:
    components: list[Component]
    groups: list[ComponentGroup]
    ungrouped: list[Component]
    incidents: list[Incident]
    upcoming: list[Incident]
    active_maintenance: list[Incident]
    indicator: str
    description: str
    updated_at: datetime = EPOCH
    layout: list[tuple[ComponentGroup | None, list[Component]]] = field(default_factory=list)


def page_updated_at(components: list[Component], groups: list[ComponentGroup]) -> datetime:
    """When anything on the page last changed: a component, a group, or any incident or
    maintenance (resolving the last incident changes the page too). A page with none of those
    yet was last changed when it was set up (its first user)."""
    latest_incident = db.session.execute(select(func.max(Incident.updated_at))).scalar()
    stamps = [c.updated_at for c in components] + [g.updated_at for g in groups] + [latest_incident]
    stamps = [s for s in stamps if s is not None]
    if stamps:
        return max(stamps)
    return db.session.execute(select(func.min(User.created_at))).scalar() or EPOCH


def build_summary() -> Summary:
    components = list_components()
    groups = list_groups()
    incidents = list_incidents(unresolved_only=True)
    upcoming = upcoming_maintenances()
    active = active_maintenances()
    indicator, description = overall_status([c.status for c in components], [i.impact for i in incidents],
                                            maintenance_in_progress=bool(active))
    ungrouped = [c for c in components if c.group_id is None]
    layout: list[tuple[ComponentGroup | None, list[Component]]] = []
    # Groups and ungrouped components interleave by position, like Statuspage renders them.
    entries = [(g.position, 0, g.id, g) for g in groups] + [(c.position, 1, c.id, c) for c in ungrouped]
    for _, _, _, item in sorted(entries, key=lambda e: e[:3]):
        if isinstance(item, ComponentGroup):
            if item.components:
                layout.append((item, list(item.components)))
        else:
            layout.append((None, [item]))
    return Summary(
        components=components, groups=groups, ungrouped=ungrouped, incidents=incidents,
        upcoming=upcoming, active_maintenance=active, indicator=indicator, description=description,
        updated_at=page_updated_at(components, groups), layout=layout,
    )
