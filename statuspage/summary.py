"""What the status page shows right now; shared by the HTML page and the v2 JSON API."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from .components import list_components, list_groups, overall_status
from .incidents import active_maintenances, list_incidents, upcoming_maintenances
from .models import Component, ComponentGroup, Incident


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
    updated_at: datetime | None = None
    layout: list[tuple[ComponentGroup | None, list[Component]]] = field(default_factory=list)


def build_summary() -> Summary:
    components = list_components()
    groups = list_groups()
    incidents = list_incidents(unresolved_only=True)
    upcoming = upcoming_maintenances()
    active = active_maintenances()
    indicator, description = overall_status(components, [i.impact for i in incidents])
    stamps = [c.updated_at for c in components] + [i.updated_at for i in incidents + active + upcoming]
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
        updated_at=max((s for s in stamps if s), default=None), layout=layout,
    )
