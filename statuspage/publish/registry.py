"""The registry of public paths: every anonymous, cacheable response the site serves.

A public page is a render function (``RenderContext`` -> ``Rendered``) plus what it depends on.
Registering one with ``public_page`` (a single path) or ``public_family`` (a path with arguments,
one file per member) does everything at once: the Flask route that serves it (snapshot file
first, the same render function live when the file is missing), the file in the snapshot, the
re-render when something it depends on changes, and removal of the file when it is gone.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from flask import Blueprint
from werkzeug.routing import Map, Rule

from .render import ContentType, RenderContext, Rendered


class Topic(StrEnum):
    """What a change touched, as far as public output goes (statuspage/publish/changes.py)."""

    COMPONENT_STATUS = "component-status"  # a component's status (the summary, badges, JSON)
    COMPONENTS = "components"  # names, descriptions, groups, order: every page's subscribe control
    INCIDENTS = "incidents"  # an incident, maintenance or update (the id is recorded too)
    INCIDENT_LIST = "incident-list"  # one added, removed or re-dated: paged lists shift
    SUBSCRIBE = "subscribe"  # push turned on/off or keys changed: the control on every page
    ALL = "all"  # everything (first publish, a new release or configuration, `flask publish`)


@dataclass
class ChangeSet:
    """The union of the pending publish requests: topics, incident ids and literal paths."""

    topics: set[Topic] = field(default_factory=set)
    incident_ids: set[int] = field(default_factory=set)
    paths: set[str] = field(default_factory=set)

    def touches(self, topics: Iterable[Topic]) -> bool:
        return Topic.ALL in self.topics or bool(self.topics & set(topics))


Args = dict[str, Any]
# A family's answer to a change: arguments to render now, and arguments that may wait for a
# quieter moment (big rebuilds are spread over several rounds so fresh changes never queue
# behind them).
Affected = tuple[list[Args], list[Args]]


@dataclass(eq=False)
class PublicPage:
    rule: str
    endpoint: str
    render: Callable[..., Rendered]
    content_type: ContentType
    topics: frozenset[Topic] = frozenset()
    cors: bool = False
    cache_control: str | None = None  # None: the snapshot default (short max-age, stale-*)
    headers: dict[str, str] = field(default_factory=dict)
    # Families only: every member's arguments, and which members a change affects.
    members: Callable[[], Iterable[Args]] | None = None
    affected: Callable[[ChangeSet], Affected] | None = None
    # Re-render at least this often even without a change (e.g. pages showing "the last 90 days").
    refresh_every: timedelta | None = None
    _rule: Rule | None = None

    @property
    def is_family(self) -> bool:
        return self.members is not None

    def path(self, args: Args | None = None) -> str:
        return self._rule.build(args or {})[1]  # type: ignore[union-attr]

    def all_args(self) -> Iterable[Args]:
        return self.members() if self.members else [{}]


class Registry:
    def __init__(self) -> None:
        self.pages: list[PublicPage] = []
        self._map = Map(strict_slashes=False, merge_slashes=False)

    def add(self, page: PublicPage) -> None:
        from ..web.http import DbIdConverter

        self._map.converters["int"] = DbIdConverter
        rule = Rule(page.rule, endpoint=page)
        self._map.add(rule)
        page._rule = rule
        self.pages.append(page)

    def match(self, path: str) -> tuple[PublicPage, Args] | None:
        """The page (and arguments) a public path belongs to, or None for other paths."""
        from werkzeug.exceptions import HTTPException

        try:
            page, args = self._map.bind("localhost").match(path, method="GET")
        except HTTPException:
            return None
        return page, args

    def by_endpoint(self, endpoint: str) -> PublicPage:
        for page in self.pages:
            if page.endpoint == endpoint:
                return page
        raise KeyError(endpoint)


REGISTRY = Registry()


def _register(bp: Blueprint, page: PublicPage) -> None:
    from .serve import serve_page

    def view(**args):
        return serve_page(page, args)

    view.__name__ = page.endpoint
    bp.add_url_rule(page.rule, page.endpoint, view, methods=["GET"])
    # The registry knows full paths and blueprint-qualified endpoints, as url_for() spells them.
    page.rule = (bp.url_prefix or "").rstrip("/") + page.rule
    page.endpoint = f"{bp.name}.{page.endpoint}"
    REGISTRY.add(page)


def public_page(bp: Blueprint, rule: str, *, topics: Iterable[Topic], content_type: ContentType = ContentType.HTML,
                endpoint: str | None = None, cors: bool = False, cache_control: str | None = None,
                headers: dict[str, str] | None = None, refresh_every: timedelta | None = None):
    """Register a single public path: ``@public_page(bp, "/badge.svg", topics={Topic.COMPONENT_STATUS},
    content_type=ContentType.SVG)`` over ``def badge(ctx: RenderContext) -> Rendered``."""

    def decorator(render: Callable[[RenderContext], Rendered]):
        _register(bp, PublicPage(rule, endpoint or render.__name__, render, content_type, frozenset(topics),
                                 cors=cors, cache_control=cache_control, headers=dict(headers or {}),
                                 refresh_every=refresh_every))
        return render

    return decorator


def public_family(bp: Blueprint, rule: str, *, members: Callable[[], Iterable[Args]],
                  affected: Callable[[ChangeSet], Affected], content_type: ContentType = ContentType.HTML,
                  endpoint: str | None = None, cors: bool = False, headers: dict[str, str] | None = None,
                  refresh_every: timedelta | None = None):
    """Register a path with arguments (one file per member), e.g. ``/incidents/<int:incident_id>``.

    ``members()`` lists every member's arguments (full rebuilds; files of others are removed),
    ``affected(changes)`` says which members a change re-renders. The render function takes the
    context and the arguments, and raises NotFound (or a 404 ServiceError) for a member that is
    gone: its files are then deleted.
    """

    def decorator(render: Callable[..., Rendered]):
        _register(bp, PublicPage(rule, endpoint or render.__name__, render, content_type, frozenset(),
                                 cors=cors, headers=dict(headers or {}), members=members, affected=affected,
                                 refresh_every=refresh_every))
        return render

    return decorator
