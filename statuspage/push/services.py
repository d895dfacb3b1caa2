"""What we know about each browser push service: how to recognise its endpoints, the largest
encrypted body it takes, and its quirks (the sender and the payload builder ask here, by host).

Largest body accepted (the aes128gcm body: 86-byte header + ciphertext + 16-byte tag):

=========  ===========================  =====================================================
service    endpoint host                largest body
=========  ===========================  =====================================================
FCM        fcm.googleapis.com           4096 bytes (Firebase: "up to 4096 bytes of payload")
Mozilla    updates.push.services...     4096 bytes (autopush refuses more with 413)
Apple      *.push.apple.com             4096 bytes (APNs' web push payload limit)
WNS        *.notify.windows.com         4096 bytes for Web Push (Edge); raw WNS allows 5 KB
=========  ===========================  =====================================================

RFC 8030 section 7.2 makes 4096 bytes the least a push service must accept, and every known
service documents exactly that, so the smallest is 4096: ``crypto.MAX_PLAINTEXT`` (3993 bytes of
JSON, one record) keeps every payload we build under it, classic or declarative. The simulator
(``simulator.MAX_BODY``) refuses a byte more with 413, as those services do; the live limits are
not measured from here (no test reaches the real services), so this table follows their docs and
``tests/push/test_quirks.py`` proves no trigger can produce a body above it.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["DNS_LABEL_RE", "KNOWN_SERVICES", "PushService", "ServiceInfo", "push_service", "service_of_host",
           "smallest_max_body"]


class PushService(enum.StrEnum):
    FCM = "fcm"
    MOZILLA = "mozilla"
    APPLE = "apple"
    WNS = "wns"
    OTHER = "other"  # PUSH_EXTRA_ORIGINS (self-hosted push services, the simulator)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    service: PushService
    hosts: tuple[str, ...]  # exact hosts
    suffixes: tuple[str, ...]  # any subdomain of these
    max_body: int  # bytes of encrypted body it accepts


KNOWN_SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo(PushService.FCM, ("fcm.googleapis.com",), (), 4096),
    ServiceInfo(PushService.MOZILLA, ("updates.push.services.mozilla.com",), (), 4096),
    ServiceInfo(PushService.APPLE, (), (".push.apple.com",), 4096),
    ServiceInfo(PushService.WNS, (), (".notify.windows.com",), 4096),
)


#: One DNS label (lower case): what endpoint hosts and VAPID subject domains are made of.
DNS_LABEL_RE = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def service_of_host(host: str) -> PushService:
    """Which push service a (lower-case) host belongs to: an exact host, or a subdomain of a
    suffix (OTHER when none is known). The allow-list of endpoints is this same rule."""
    for info in KNOWN_SERVICES:
        if host in info.hosts or any(host.endswith(s) and len(host) > len(s) for s in info.suffixes):
            return info.service
    return PushService.OTHER


def push_service(endpoint: str) -> PushService:
    """Which push service an endpoint belongs to, by its host (OTHER when none is known)."""
    try:
        host = (urlsplit(endpoint).hostname or "").lower()
    except ValueError:
        return PushService.OTHER
    return service_of_host(host)


def smallest_max_body() -> int:
    return min(info.max_body for info in KNOWN_SERVICES)
