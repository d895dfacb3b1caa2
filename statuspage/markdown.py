"""Incident bodies are Markdown; rendered HTML is sanitized with nh3 (Ammonia)."""
from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

_md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table").enable("strikethrough")

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li", "a", "h3", "h4", "h5",
    "h6", "hr", "table", "thead", "tbody", "tr", "th", "td", "s", "del",
}


def render_markdown(text: str | None) -> Markup:
    html = _md.render(text or "")
    clean = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes={"a": {"href", "title"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
    return Markup(clean)


def plain_text(text: str | None) -> str:
    """Markdown to plain text for notification bodies (no markup, collapsed whitespace)."""
    html = _md.render(text or "")
    stripped = nh3.clean(html, tags=set())
    import html as _html

    return " ".join(_html.unescape(stripped).split())
