"""The seam between the Web Push protocol and the wire.

``sender.py`` speaks Web Push: it checks, encrypts and signs each message, and says what a push
service's answer means. A ``Transport`` only carries requests to push-service origins and hands
back their responses. ``http1.py`` is the one in use (pooled keep-alive HTTP/1.1 over TLS); an
HTTP/2 transport (FCM, Apple and Mozilla all speak it) is one new class with these four methods,
passed to ``PushSender(transport_factory=...)``.

Everything runs on the sender's event loop thread: a transport is not thread-safe and needs none.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

__all__ = ["Headers", "Limits", "OnDone", "Origin", "Response", "Transport"]


class Origin(NamedTuple):
    scheme: str  # "https" (or "http" for origins an operator allowed explicitly)
    host: str
    port: int


class Headers(dict):
    """Response headers: names lowercased; ``get`` and ``[]`` are case-insensitive; repeated
    headers are joined with ", " as RFC 9110 allows."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


class Response:
    """A push service's final answer (interim 1xx responses are not reported)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body  # at most the first few KB: only ever quoted in failure reasons


#: Called exactly once per submitted request, on the loop thread, from whatever callback saw the
#: outcome: ``(response, None)``, or ``(None, exception)`` when there is no response -- a
#: ``TimeoutError`` past the deadline or when cancelled, a ``ConnectionError`` (refused, reset,
#: closed early, an answer that is not HTTP), an ``ssl.SSLError``, an ``OSError`` from DNS.
OnDone = Callable[[Response | None, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class Limits:
    """How much of a push service's capacity one sender may use, and how long it waits."""

    #: Connections per origin at most (the pool opens them only as requests queue up).
    max_connections: int = 256
    #: Connection attempts (TCP + TLS handshakes) under way per origin at most.
    max_connecting: int = 8
    #: Seconds the oldest queued request has waited before the pool opens another connection.
    grow_after: float = 0.005
    #: Idle pooled connections older than this are closed instead of reused (push services drop
    #: idle keep-alive connections after a few minutes; a fresh handshake beats a reset).
    idle_timeout: float = 50.0
    #: Seconds a connection attempt may take.
    connect_timeout: float = 10.0


class Transport(Protocol):
    def submit(self, origin: Origin, authority: str, path: str, headers: Sequence[tuple[str, str]], body: bytes,
               deadline: float, on_done: OnDone) -> object:
        """Queue ``POST path`` with ``headers`` and ``body`` for ``origin`` (``authority`` is the
        Host / :authority value); returns a handle for ``cancel``. The request goes out as soon
        as the caller yields to the loop, on a pooled connection or a new one; ``on_done`` is
        called once it is answered, fails, or passes ``deadline`` (``time.monotonic()``) and
        ``expire`` runs."""
        ...

    def cancel(self, handle: object) -> None:
        """Give up on a request: drop its connection if it is in flight (the connection is out of
        step then) and complete it with ``TimeoutError``. No-op once it is done."""
        ...

    def expire(self, now: float) -> None:
        """Complete every request whose deadline is at or before ``now`` with ``TimeoutError``."""
        ...

    def close(self) -> None:
        """Close every connection and stop connecting. Requests still pending get no answer."""
        ...
