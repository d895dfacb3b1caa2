"""Shields-style SVG status badges (for READMEs and dashboards).

Text widths come from a table of advance widths at 11px for U+0020-U+007E, U+00A0-U+00FF and
common typographic punctuation,
measured from DejaVu Sans (the font the badge's font-family list falls back to where Verdana is
missing; Verdana's widths differ by a few percent). Each text element also carries `textLength`,
so every renderer draws the text exactly as wide as its box, whichever font it picks. Characters
outside the table count as wide (11px, East Asian wide/fullwidth) or average (7px); combining
marks as zero.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

FONT_FAMILY = "Verdana,Geneva,DejaVu Sans,sans-serif"
FONT_SIZE = 11
PADDING = 6  # each side of each text
HEIGHT = 20
_WIDTHS = [
    3.5, 4.41, 5.06, 9.22, 7, 10.45, 8.58, 3.02, 4.29, 4.29, 5.5, 9.22, 3.5, 3.97, 3.5, 3.71, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 3.71, 3.71, 9.22, 9.22, 9.22, 5.84, 11, 7.52, 7.55, 7.68, 8.47, 6.95, 6.33, 8.52, 8.27, 3.24,
    3.24, 7.21, 6.13, 9.49, 8.23, 8.66, 6.63, 8.66, 7.64, 6.98, 6.72, 8.05, 7.52, 10.88, 7.54, 6.72, 7.54, 4.29,
    3.71, 4.29, 9.22, 5.5, 5.5, 6.74, 6.98, 6.05, 6.98, 6.77, 3.87, 6.98, 6.97, 3.06, 3.06, 6.37, 3.06, 10.72,
    6.97, 6.73, 6.98, 6.98, 4.52, 5.73, 4.31, 6.97, 6.51, 9, 6.51, 6.51, 5.77, 7, 3.71, 7, 9.22, 3.5, 4.41, 7,
    7, 7, 7, 3.71, 5.5, 5.5, 11, 5.18, 6.73, 9.22, 0, 11, 5.5, 5.5, 9.22, 4.41, 4.41, 5.5, 7, 7, 3.5, 5.5, 4.41,
    5.18, 6.73, 10.66, 10.66, 10.66, 5.84, 7.52, 7.52, 7.52, 7.52, 7.52, 7.52, 10.72, 7.68, 6.95, 6.95, 6.95,
    6.95, 3.24, 3.24, 3.24, 3.24, 8.52, 8.23, 8.66, 8.66, 8.66, 8.66, 8.66, 9.22, 8.66, 8.05, 8.05, 8.05, 8.05,
    6.72, 6.65, 6.93, 6.74, 6.74, 6.74, 6.74, 6.74, 6.74, 10.8, 6.05, 6.77, 6.77, 6.77, 6.77, 3.06, 3.06, 3.06,
    3.06, 6.73, 6.97, 6.73, 6.73, 6.73, 6.73, 6.73, 9.22, 6.73, 6.97, 6.97, 6.97, 6.97, 6.51, 6.98, 6.51
]
# Typographic punctuation names and messages use (dashes, quotes, ellipsis, bullet, arrows).
_EXTRA_WIDTHS = {
    "\u2013": 5.5, "\u2014": 11, "\u2018": 3.5, "\u2019": 3.5, "\u201c": 5.7, "\u201d": 5.7, "\u2022": 6.49,
    "\u2026": 11, "\u20ac": 7, "\u2122": 11, "\u2192": 9.22,
}
_FIRST_RANGE = range(0x20, 0x7F)
_SECOND_RANGE = range(0xA0, 0x100)
AVERAGE_WIDTH = 7.0
WIDE_WIDTH = 11.0
MAX_TEXT = 60  # characters of a label or message before it is cut with an ellipsis


def char_width(ch: str) -> float:
    code = ord(ch)
    if code in _FIRST_RANGE:
        return _WIDTHS[code - 0x20]
    if code in _SECOND_RANGE:
        return _WIDTHS[code - 0xA0 + len(_FIRST_RANGE)]
    if ch in _EXTRA_WIDTHS:
        return _EXTRA_WIDTHS[ch]
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
        return 0.0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return WIDE_WIDTH
    return AVERAGE_WIDTH


def text_width(text: str) -> float:
    return round(sum(char_width(ch) for ch in text), 2)


def shorten(text: str, limit: int = MAX_TEXT) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


@dataclass(frozen=True)
class BadgeColor:
    background: str
    text: str  # chosen for at least 4.5:1 contrast with the background


# Colours per state; white text where it keeps 4.5:1, dark text on yellow.
GREEN = BadgeColor("#1a7f37", "#fff")
YELLOW = BadgeColor("#e3b341", "#1f2328")
ORANGE = BadgeColor("#bc4c00", "#fff")
RED = BadgeColor("#c62828", "#fff")
BLUE = BadgeColor("#0969da", "#fff")
GREY = BadgeColor("#57606a", "#fff")
LABEL = BadgeColor("#555", "#fff")

INDICATOR_COLORS = {"none": GREEN, "minor": YELLOW, "major": ORANGE, "critical": RED, "maintenance": BLUE}
STATUS_COLORS = {
    "operational": GREEN, "degraded_performance": YELLOW, "partial_outage": ORANGE, "major_outage": RED,
    "under_maintenance": BLUE,
}


def render_badge(label: str, message: str, color: BadgeColor, title: str | None = None) -> str:
    """A flat shields-style badge: grey label on the left, coloured message on the right, with a
    <title> and aria-label for screen readers (an <img alt> on the embedding page wins there)."""
    label, message = shorten(label), shorten(message)
    title = title or f"{label}: {message}"
    label_text, message_text = text_width(label), text_width(message)
    label_box = round(label_text + 2 * PADDING)
    message_box = round(message_text + 2 * PADDING)
    width = label_box + message_box

    def text(x: float, value: str, length: float, fill: str) -> str:
        shadow = "" if fill != "#fff" else (
            f'<text aria-hidden="true" x="{x:g}" y="15" fill="#010101" fill-opacity=".3" '
            f'textLength="{length:g}">{escape(value)}</text>')
        return f'{shadow}<text x="{x:g}" y="14" fill="{fill}" textLength="{length:g}">{escape(value)}</text>'

    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" role="img" '
        f'aria-label={quoteattr(title)}><title>{escape(title)}</title>'
        f'<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        f'<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="{HEIGHT}" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{label_box}" height="{HEIGHT}" fill="{LABEL.background}"/>'
        f'<rect x="{label_box}" width="{message_box}" height="{HEIGHT}" fill="{color.background}"/>'
        f'<rect width="{width}" height="{HEIGHT}" fill="url(#s)"/></g>'
        f'<g text-anchor="middle" font-family="{FONT_FAMILY}" font-size="{FONT_SIZE}" '
        f'text-rendering="geometricPrecision">'
        f'{text(label_box / 2, label, label_text, LABEL.text)}'
        f'{text(label_box + message_box / 2, message, message_text, color.text)}'
        f'</g></svg>'
    )
