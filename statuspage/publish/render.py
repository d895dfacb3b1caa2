"""The one renderer: what a public path's bytes are, for the snapshot writer and the live view alike."""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from flask import current_app, render_template

from ..components import list_components
from ..summary import Summary, build_summary
from ..uptime import Uptime, build_uptime


class ContentType(StrEnum):
    HTML = "text/html; charset=utf-8"
    JSON = "application/json"
    ATOM = "application/atom+xml; charset=utf-8"
    JAVASCRIPT = "text/javascript; charset=utf-8"
    MANIFEST = "application/manifest+json"
    SVG = "image/svg+xml"


@dataclass(frozen=True)
class Rendered:
    body: bytes
    content_type: ContentType


class RenderContext:
    """Shared by every page rendered in one publish round (or one live request): the summary and
    the component list are queried once, not once per page."""

    def __init__(self, flashes: list[tuple[str, str]] | None = None) -> None:
        # Flashed messages are shown only on a live, private render (serve.py); the snapshot
        # never reads the visitor's session.
        self.flashes = flashes or []

    @cached_property
    def summary(self) -> Summary:
        return build_summary()

    @cached_property
    def uptime(self) -> Uptime:
        return build_uptime()

    @cached_property
    def components(self) -> list:
        return list_components()

    def push_context(self) -> dict[str, Any]:
        from ..push.settings import push_available

        return {
            "push_enabled": push_available(),
            "push_components": [
                {"id": c.id, "name": c.name, "group": c.group.name if c.group else None} for c in self.components
            ],
        }

    def html(self, template: str, **context: Any) -> Rendered:
        body = render_template(template, page_flashes=self.flashes, **self.push_context(), **context)
        return Rendered(body.encode(), ContentType.HTML)

    def json(self, data: Any) -> Rendered:
        # The bytes jsonify() sends (same separators, key order and trailing newline).
        return Rendered(f"{current_app.json.dumps(data)}\n".encode(), ContentType.JSON)

    def text(self, body: str, content_type: ContentType) -> Rendered:
        return Rendered(body.encode(), content_type)
