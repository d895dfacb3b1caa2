"""Web Push sending: the push protocol and the orchestration of a batch (no Flask, no DB).

This module knows Web Push: which endpoints may be contacted (the caller's allow-list, checked
again before every send), the aes128gcm encryption (a fresh ephemeral ECDH key and salt per
message, RFC 8291), the VAPID ``Authorization`` header (cached per push-service origin), the
``TTL``/``Urgency``/``Topic`` headers, and what a push service's answer means (``classify``:
sent, expired, retry with Retry-After, failed with the reason; redirects are never followed).
Carrying the requests is a ``Transport``'s job (``transport.py``; ``http1.py`` is the one in use).

``PushSender.send_all`` is synchronous so RQ jobs and CLI commands can call it directly, but the
requests run on a persistent asyncio (uvloop) loop in a daemon thread owned by the sender.
Keeping the loop and its transport alive between calls means a worker that processes many batch
jobs reuses its keep-alive TLS connections to the push services instead of re-handshaking for
every batch.

How a batch goes out (the fan-out's hot path, measured by ``bench/fanout.py``): one producer
checks and encrypts each push and submits it, ``yield_every`` messages at a time, then yields to
the loop, which writes that run of requests back to back and reads responses in bursts; it waits
whenever ``concurrency`` requests are in flight. Completion is a plain callback, not a task or
future per push; deadlines are enforced by one periodic check (``Transport.expire``). Results
come back in input order.
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Self
from urllib.parse import urlsplit

from ..validation import ascii_int
from .crypto import MAX_PLAINTEXT, VapidSigner, encrypt_aes128gcm, endpoint_origin, topic_hash
from .http1 import HTTP1Transport
from .services import PushService, push_service, service_of_host
from .transport import Limits, OnDone, Origin, Response, Transport

log = logging.getLogger(__name__)

__all__ = ["OutgoingPush", "PushOutcome", "PushResult", "PushSender", "classify",
           "parse_retry_after"]

_USER_AGENT = ("User-Agent", "statuspage-push/1")
_ENCODING = ("Content-Encoding", "aes128gcm")
_CONTENT_TYPE = ("Content-Type", "application/octet-stream")
_WNS_NO_CACHE = ("X-WNS-Cache-Policy", "no-cache")


class PushOutcome(enum.StrEnum):
    SENT = "sent"
    EXPIRED = "expired"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(slots=True)
class OutgoingPush:
    key: object  # opaque caller id (e.g. subscription id), echoed in the result
    endpoint: str
    p256dh: bytes  # raw 65-byte point (already validated at subscribe time)
    auth: bytes  # raw 16 bytes
    payload: bytes  # plaintext JSON, at most MAX_PLAINTEXT bytes
    ttl: int = 86400
    urgency: str = "normal"
    topic: str | None = None


@dataclass(slots=True)
class PushResult:
    key: object
    outcome: PushOutcome
    status: int | None
    reason: str = ""
    retry_after: float | None = None


_URGENCIES = frozenset({"very-low", "low", "normal", "high"})
_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_REASON_BODY_CHARS = 200


def sanitize_topic(topic: str) -> str:
    """Topic must be <= 32 chars of the URL-safe base64 alphabet (RFC 8030 section 5.4).

    Anything else is hashed, so the same input always collapses onto the same topic.
    """
    if _TOPIC_RE.fullmatch(topic):
        return topic
    return topic_hash(topic)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP-date; None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    seconds = ascii_int(value)
    if seconds is not None:
        return float(seconds) if seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if now is None:
        now = time.time()
    return max(0.0, when.timestamp() - now)


# Stable wording across Python versions (3.13 renamed 413 to "Content Too Large").
_PHRASES = {413: "Payload Too Large"}


def _status_phrase(status: int) -> str:
    phrase = _PHRASES.get(status)
    if phrase is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            return str(status)
    return f"{status} {phrase}"


def classify(
    status: int, headers: Mapping[str, str] | None, body_text: str | None,
    service: PushService | None = None,
) -> tuple[PushOutcome, str, float | None]:
    """Map a push service response to (outcome, reason, retry_after seconds); ``service`` is the
    endpoint's push service, for the answers only one of them gives (see ``services.py``)."""
    headers = headers or {}
    if 200 <= status < 300:
        return PushOutcome.SENT, "", None
    if status in (404, 410):
        # The subscription is gone for good: the caller must never send to it again.
        return PushOutcome.EXPIRED, _status_phrase(status), None
    # WNS answers 406 Not Acceptable, with a Retry-After, when it throttles the sender: a deferral.
    if status == 429 or 500 <= status < 600 or (status == 406 and service is PushService.WNS):
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return PushOutcome.RETRY, _status_phrase(status), retry_after
    if 300 <= status < 400:
        # Following a redirect could send the payload to a host that was never allow-listed.
        return PushOutcome.FAILED, f"{_status_phrase(status)}: redirects are not followed", None
    snippet = " ".join((body_text or "").split())[:_REASON_BODY_CHARS]
    reason = _status_phrase(status) + (f": {snippet}" if snippet else "")
    return PushOutcome.FAILED, reason, None


# A request line or Host header must not carry whitespace, controls or non-ASCII (injection).
_BAD_TARGET = re.compile(r"[^\x21-\x7e]")
_ORIGIN_CACHE_SIZE = 256


class _Target:
    """A parsed endpoint: where to connect and what to put in the request line.

    A fan-out sends to a handful of push-service origins, so ``scheme://host:port`` is parsed
    once per origin and cached; only the path is checked per push.
    """

    __slots__ = ("origin", "host_header", "path", "audience")
    _origins: dict[str, tuple[Origin, str, str]] = {}

    def __init__(self, url: str) -> None:
        start = url.find("://")
        slash = url.find("/", start + 3) if start > 0 else -1
        prefix = url[:slash]
        if slash < 0 or "?" in prefix or "#" in prefix:
            self._parse_slowly(url)
            return
        hit = self._origins.get(prefix)
        if hit is None:
            hit = self._parse_origin(prefix)
            if len(self._origins) >= _ORIGIN_CACHE_SIZE:
                self._origins.clear()
            self._origins[prefix] = hit
        self.origin, self.host_header, self.audience = hit
        path = url[slash:]
        fragment = path.find("#")
        if fragment >= 0:
            path = path[:fragment]
        if _BAD_TARGET.search(path):
            raise ValueError("endpoint contains characters not allowed in a request line")
        self.path = path

    def _parse_slowly(self, url: str) -> None:
        parts = urlsplit(url)
        self.origin, self.host_header, self.audience = self._parse_origin(f"{parts.scheme}://{parts.netloc}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if _BAD_TARGET.search(path):
            raise ValueError("endpoint contains characters not allowed in a request line")
        self.path = path

    @staticmethod
    def _parse_origin(prefix: str) -> tuple[Origin, str, str]:
        parts = urlsplit(prefix)
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in ("http", "https") or not host or parts.username is not None:
            raise ValueError("endpoint must be an absolute http(s) URL")
        default = 443 if scheme == "https" else 80
        port = parts.port or default
        shown = f"[{host}]" if ":" in host else host
        if port != default:
            shown = f"{shown}:{port}"
        if _BAD_TARGET.search(shown):
            raise ValueError("endpoint contains characters not allowed in a Host header")
        # The VAPID audience: the origin as endpoint_origin() spells it (lowercase, no default port).
        return Origin(scheme, host, port), shown, endpoint_origin(prefix)


class PushSender:
    """Sends batches of Web Push messages concurrently over a transport's reused connections."""

    #: Seconds past the request timeout after which a batch stops waiting for stragglers.
    stall_margin = 5.0
    #: Messages encrypted back to back between two looks at the network. Runs of encryption
    #: keep OpenSSL's P-256 tables in cache and let the loop write and read responses in
    #: bursts: measured ~15% less CPU per push than interleaving every message with I/O.
    yield_every = 32

    def __init__(
        self,
        signer: VapidSigner,
        *,
        is_allowed_endpoint: Callable[[str], bool],
        concurrency: int = 256,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        transport_factory: Callable[[asyncio.AbstractEventLoop], Transport] | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.signer = signer
        self.is_allowed_endpoint = is_allowed_endpoint
        self.concurrency = concurrency
        self.timeout = timeout
        #: Connections per push-service origin at most: never more than requests in flight.
        self.limits = Limits(max_connections=concurrency, connect_timeout=timeout)
        self._transport_factory = transport_factory or (
            lambda loop: HTTP1Transport(loop, self.limits, ssl_context))
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._transport: Transport | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._topic_cache: tuple[str | None, str] = (None, "")
        self._pid = 0
        self._closed = False

    # ---------------------------------------------------------------- loop management

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError("PushSender is closed")
            # After a fork (e.g. a forking RQ worker) the loop thread does not exist in the
            # child; start a fresh loop rather than waiting forever on a dead one.
            if self._loop is not None and self._pid == os.getpid():
                return self._loop
            loop = _new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="push-sender-loop", daemon=True)
            thread.start()
            ready.wait()
            self._loop, self._thread, self._pid = loop, thread, os.getpid()
            self._transport = None
            self._reaper = None
            return loop

    # ---------------------------------------------------------------- public API

    def send_all(self, pushes: Iterable[OutgoingPush]) -> list[PushResult]:
        """Send every push; return one result per push, in input order. Never raises per push."""
        items = list(pushes)
        if not items:
            return []
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("send_all must not be called from the sender's own loop")
        future = asyncio.run_coroutine_threadsafe(self._send_many(items), loop)
        return future.result()

    def close(self) -> None:
        """Close the transport's connections and stop the loop thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or self._pid != os.getpid():
            return

        async def shutdown() -> None:
            if self._reaper is not None:
                self._reaper.cancel()
            transport, self._transport = self._transport, None
            if transport is not None:
                transport.close()
            await asyncio.sleep(0)  # let the connections start closing

        with contextlib.suppress(Exception):  # best effort: the loop is stopped anyway
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        if not thread.is_alive():
            loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- internals

    async def _send_many(self, items: list[OutgoingPush]) -> list[PushResult]:
        """One producer encrypts and submits requests; responses complete them by callback.

        No task or coroutine per push: the producer yields to the loop every few messages so
        requests go out and responses are read (and their connections reused) promptly while it
        encrypts, and it waits whenever ``concurrency`` of its requests are in flight.
        """
        loop = asyncio.get_running_loop()
        transport = self._transport
        if transport is None:
            transport = self._transport = self._transport_factory(loop)
        if self._reaper is None or self._reaper.done():
            self._reaper = loop.create_task(self._reap())
        results: list[PushResult | None] = [None] * len(items)
        live: dict[int, object] = {}  # index -> transport handle of a request not answered yet
        waiter: asyncio.Future[None] | None = None
        wake_at = 0  # wake the producer once at most this many requests are live

        def complete(index: int, push: OutgoingPush, response: Response | None, exc: BaseException | None) -> None:
            live.pop(index, None)
            try:
                results[index] = self._result(push.key, response, exc, push.endpoint)
            except Exception as err:  # never let one odd response stall the batch
                results[index] = PushResult(push.key, PushOutcome.RETRY, None, f"internal error: {err!r}"[:300])
            if waiter is not None and len(live) <= wake_at and not waiter.done():
                waiter.set_result(None)

        async def wait_until(at_most: int) -> None:
            nonlocal waiter, wake_at
            while len(live) > at_most:
                waiter, wake_at = loop.create_future(), at_most
                try:
                    # Every request has its own deadline (the reaper); this is the backstop
                    # that guarantees a job never waits forever whatever happens below.
                    await asyncio.wait_for(asyncio.shield(waiter), self.timeout + self.stall_margin)
                except TimeoutError:
                    for handle in list(live.values()):
                        transport.cancel(handle)
                    live.clear()

        since_yield = 0
        for index, push in enumerate(items):
            if len(live) >= self.concurrency:
                # Resume once a run's worth of slots is free, so encryption stays in runs.
                await wait_until(max(0, self.concurrency - self.yield_every))
            started = self._start(transport, push, functools.partial(complete, index, push))
            if isinstance(started, PushResult):
                results[index] = started
                continue
            live[index] = started
            since_yield += 1
            if since_yield >= self.yield_every:
                since_yield = 0
                await asyncio.sleep(0)  # the transport writes the run; the loop reads responses
        await wait_until(0)
        return results  # type: ignore[return-value]

    def _start(self, transport: Transport, push: OutgoingPush, on_done: OnDone) -> PushResult | object:
        """Check, encrypt and submit one push, or return its result right away."""
        try:
            allowed = bool(self.is_allowed_endpoint(push.endpoint))
        except Exception:
            allowed = False
        if not allowed:
            return PushResult(push.key, PushOutcome.FAILED, None, "endpoint not allowed")
        if len(push.payload) > MAX_PLAINTEXT:
            return PushResult(push.key, PushOutcome.FAILED, None,
                              f"payload too large ({len(push.payload)} > {MAX_PLAINTEXT} bytes)")
        try:
            target = _Target(push.endpoint)
        except ValueError as exc:
            return PushResult(push.key, PushOutcome.FAILED, None, f"invalid endpoint URL: {exc}")
        # Encrypt right before sending: the ephemeral key is used once and never kept.
        try:
            body = encrypt_aes128gcm(push.payload, push.p256dh, push.auth)
            authorization = self.signer.header_for_origin(target.audience)
        except ValueError as exc:
            return PushResult(push.key, PushOutcome.FAILED, None, f"cannot encrypt: {exc}")
        urgency = push.urgency if push.urgency in _URGENCIES else "normal"
        ttl = max(0, int(push.ttl))
        headers = (_USER_AGENT, ("TTL", str(ttl)), ("Urgency", urgency),
                   *((("Topic", self._topic(push.topic)),) if push.topic else ()),
                   # WNS keeps a message for an offline device unless told not to: TTL 0 means now or never.
                   *((_WNS_NO_CACHE,) if ttl == 0 and service_of_host(target.origin.host) is PushService.WNS else ()),
                   _ENCODING, _CONTENT_TYPE, ("Authorization", authorization))
        return transport.submit(target.origin, target.host_header, target.path, headers, body,
                                time.monotonic() + self.timeout, on_done)

    def _topic(self, topic: str) -> str:
        cached = self._topic_cache
        if cached[0] != topic:  # one topic per event: sanitize it once per batch, not per push
            cached = self._topic_cache = (topic, sanitize_topic(topic))
        return cached[1]

    def _result(self, key: object, response: Response | None, exc: BaseException | None,
                endpoint: str = "") -> PushResult:
        if response is not None:
            status = response.status
            if 200 <= status < 300:
                return PushResult(key, PushOutcome.SENT, status)
            text = response.body[:4 * _REASON_BODY_CHARS].decode("utf-8", "replace")
            outcome, reason, retry_after = classify(status, response.headers, text, push_service(endpoint))
            return PushResult(key, outcome, status, reason, retry_after)
        if isinstance(exc, asyncio.CancelledError):
            return PushResult(key, PushOutcome.RETRY, None, "connection error: cancelled")
        if isinstance(exc, ssl.SSLCertVerificationError):
            # Retrying will not fix a certificate the pinned trust store rejects.
            detail = exc.verify_message or exc.reason or str(exc)
            return PushResult(key, PushOutcome.FAILED, None, f"TLS certificate verification failed: {detail}")
        if isinstance(exc, TimeoutError):
            return PushResult(key, PushOutcome.RETRY, None, f"timeout after {self.timeout:g}s")
        # ConnectionError, DNS, TLS, a response we cannot parse: worth another try later.
        return PushResult(key, PushOutcome.RETRY, None, f"connection error: {type(exc).__name__}: {exc}"[:300])

    async def _reap(self) -> None:
        """Enforce request deadlines with one periodic check instead of a timer per request."""
        tick = max(0.01, min(0.25, self.timeout / 10))
        while True:
            await asyncio.sleep(tick)
            transport = self._transport
            if transport is None:
                continue
            try:
                transport.expire(time.monotonic())
            except Exception:  # the reaper must outlive any one bad request
                log.exception("push sender: expiring requests failed")


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional (e.g. Windows)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()



