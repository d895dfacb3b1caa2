"""The two shapes of the push message: our classic JSON and Declarative Web Push.

Classic (what ``sw-push.js`` has always read)::

    {"title", "body", "icon", "badge", "url", "tag", "event", "timestamp"}

Declarative Web Push (WebKit, Safari and iOS/iPadOS 18.4+)::

    {"web_push": 8030,
     "notification": {"title", "body", "navigate", "lang", "dir", "tag", "silent",
                      "data": {"icon", "badge", "url", "event", "event_id", "timestamp"}},
     "mutable": true}

Safari shows a declarative message itself, even when the service worker was evicted, and never
revokes a subscription for a push that "showed nothing". ``mutable`` still hands it to the service
worker's ``push`` event first, which shows it the way it shows classic ones. Our own fields sit in
``notification.data`` (the Notification's ``data``, so they are there on a notification Safari
showed by itself too). Browsers without Declarative Web Push treat it as any JSON: ``sw-push.js``
reads both shapes.

``payload_format`` in the push settings picks the shape: ``auto`` (the default) sends declarative
to Apple endpoints only, ``classic`` and ``declarative`` send that shape to every endpoint.
"""
from __future__ import annotations

import enum
import json
from typing import Any

from .crypto import MAX_PLAINTEXT
from .services import PushService, push_service
from .triggers import encode_payload

__all__ = ["DECLARATIVE_MAGIC", "PayloadFormat", "declarative_message", "encode_for", "uses_declarative"]

#: The member that marks a declarative push message (RFC 8030's number).
DECLARATIVE_MAGIC = 8030
#: The public pages are English (templates/base.html says lang="en").
SITE_LANG = "en"
_RTL_LANGS = frozenset({"ar", "dv", "fa", "he", "ku", "ps", "sd", "ug", "ur", "yi"})
_DATA_FIELDS = ("icon", "badge", "url", "event", "event_id", "timestamp")


class PayloadFormat(enum.StrEnum):
    AUTO = "auto"
    CLASSIC = "classic"
    DECLARATIVE = "declarative"


def uses_declarative(payload_format: str, endpoint: str) -> bool:
    """True when ``endpoint`` gets the declarative shape under ``payload_format``."""
    if payload_format == PayloadFormat.DECLARATIVE:
        return True
    if payload_format == PayloadFormat.CLASSIC:
        return False
    return push_service(endpoint) is PushService.APPLE


def text_direction(lang: str) -> str:
    return "rtl" if lang.split("-")[0].lower() in _RTL_LANGS else "ltr"


def declarative_message(classic: dict[str, Any], *, lang: str = SITE_LANG, silent: bool = False) -> dict[str, Any]:
    """The declarative form of a classic payload (same title, body, tag and link)."""
    notification: dict[str, Any] = {
        "title": classic.get("title") or "",
        "body": classic.get("body") or "",
        "navigate": classic.get("url") or "",
        "lang": lang,
        "dir": text_direction(lang),
        "silent": silent,
    }
    if classic.get("tag"):
        notification["tag"] = classic["tag"]
    notification["data"] = {name: classic[name] for name in _DATA_FIELDS if name in classic}
    return {"web_push": DECLARATIVE_MAGIC, "notification": notification, "mutable": True}


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def encode_for(classic: dict[str, Any], declarative: bool, *, limit: int = MAX_PLAINTEXT,
               silent: bool = False) -> bytes:
    """The plaintext for one shape, within ``limit`` bytes: body, then title, shortened on a
    UTF-8 boundary. The declarative envelope's size does not depend on the title and body, so
    the classic payload is shortened by exactly that overhead before wrapping it."""
    if not declarative:
        return encode_payload(dict(classic), limit=limit)
    overhead = len(_dumps(declarative_message(classic, silent=silent))) - len(_dumps(classic))
    shortened = json.loads(encode_payload(dict(classic), limit=limit - max(0, overhead)))
    data = _dumps(declarative_message(shortened, silent=silent))
    if len(data) > limit:
        raise ValueError("notification payload does not fit in a push message")
    return data
