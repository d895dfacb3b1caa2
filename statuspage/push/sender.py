"""Concurrent Web Push sending over pooled keep-alive HTTP/1.1 connections (no Flask, no DB).

``PushSender.send_all`` is synchronous so RQ jobs and CLI commands can call it directly, but the
requests run on a persistent asyncio (uvloop) loop in a daemon thread owned by the sender.
Keeping the loop and its connection pool alive between calls means a worker that processes many
batch jobs reuses its keep-alive TLS connections to the push services instead of re-handshaking
for every batch.

The HTTP client is a small HTTP/1.1 protocol on asyncio transports rather than aiohttp: a push
is one POST with a few fixed headers and a tiny response, and aiohttp's general-purpose request
machinery cost about 170 us of CPU per push, twice the message encryption itself (one ECDH).
This client costs about 15 us and still speaks plain HTTP/1.1 to the push services (TLS with
certificate and host name verification, keep-alive, Content-Length, chunked and
close-delimited responses, interim 1xx, ``Connection: close``); redirects are never followed.
"""
from __future__ import annotations

import asyncio
import contextlib
import enum
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

from .crypto import MAX_PLAINTEXT, VapidSigner, encrypt_aes128gcm, topic_hash

__all__ = ["OutgoingPush", "PushOutcome", "PushResult", "PushSender", "classify",
           "parse_retry_after"]


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
    if value.isdigit():
        return float(int(value))
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
    status: int, headers: Mapping[str, str] | None, body_text: str | None
) -> tuple[PushOutcome, str, float | None]:
    """Map a push service response to (outcome, reason, retry_after seconds)."""
    headers = headers or {}
    if 200 <= status < 300:
        return PushOutcome.SENT, "", None
    if status in (404, 410):
        # The subscription is gone for good: the caller must never send to it again.
        return PushOutcome.EXPIRED, _status_phrase(status), None
    if status == 429 or 500 <= status < 600:
        retry_after = parse_retry_after(headers.get("Retry-After"))
        return PushOutcome.RETRY, _status_phrase(status), retry_after
    if 300 <= status < 400:
        # Following a redirect could send the payload to a host that was never allow-listed.
        return PushOutcome.FAILED, f"{_status_phrase(status)}: redirects are not followed", None
    snippet = " ".join((body_text or "").split())[:_REASON_BODY_CHARS]
    reason = _status_phrase(status) + (f": {snippet}" if snippet else "")
    return PushOutcome.FAILED, reason, None


class _ConnectionClosed(ConnectionError):
    """The peer closed the connection before a complete response arrived."""

    def __init__(self, received: bool, cause: BaseException | None) -> None:
        detail = f": {cause}" if cause else ""
        super().__init__(("connection closed mid-response" if received
                          else "connection closed before any response") + detail)
        self.received = received


class _BadResponse(ConnectionError):
    """The peer's bytes are not an HTTP/1.x response we can frame."""


class _Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: _Headers, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class _Headers(dict):
    """Response headers: names lowercased; ``get`` is case-insensitive (for ``classify``)."""

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


# Response framing modes.
_NO_BODY, _LENGTH, _CHUNKED, _UNTIL_CLOSE = range(4)
# Chunked decoder states.
_CH_SIZE, _CH_DATA, _CH_DATA_END, _CH_TRAILER = range(4)
_MAX_HEAD = 64 * 1024
_MAX_KEEP = 4096  # response body bytes kept (only quoted in failure reasons)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection carrying one request at a time."""

    __slots__ = ("loop", "transport", "closed", "reusable", "buf", "waiter", "received", "status",
                 "headers", "mode", "remaining", "chunk_state", "body", "last_used")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = True
        self.buf = bytearray()
        self.waiter: asyncio.Future[_Response] | None = None
        self.last_used = 0.0
        self._reset()

    def _reset(self) -> None:
        self.received = False
        self.status = 0
        self.headers: _Headers | None = None
        self.mode = _NO_BODY
        self.remaining = 0
        self.chunk_state = _CH_SIZE
        self.body = bytearray()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for (or a response to an abandoned request): out of sync.
            self.close()
            return
        self.received = True
        self.buf += data
        try:
            self._parse()
        except (_BadResponse, ValueError) as exc:
            self.close()
            if not waiter.done():
                waiter.set_exception(exc if isinstance(exc, _BadResponse) else _BadResponse(str(exc)))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost finishes or fails the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.headers is not None and self.mode == _UNTIL_CLOSE:
                self._finish()
            else:
                waiter.set_exception(_ConnectionClosed(self.received, exc))

    # -- request / response

    def request(self, data: bytes) -> asyncio.Future[_Response]:
        assert self.transport is not None
        self._reset()
        self.waiter = waiter = self.loop.create_future()
        self.transport.write(data)
        return waiter

    def usable(self) -> bool:
        return not self.closed and self.reusable and self.transport is not None \
            and not self.transport.is_closing()

    def close(self) -> None:
        self.reusable = False
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()

    def abort(self) -> None:
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()

    def _parse(self) -> None:
        buf = self.buf
        while self.headers is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise _BadResponse("response headers too large")
                return
            lines = bytes(buf[:end]).split(b"\r\n")
            del buf[:end + 4]
            version, _, rest = lines[0].partition(b" ")
            code = rest[:3]
            if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise _BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
            status = int(code)
            if 100 <= status < 200:
                if status == 101:
                    raise _BadResponse("unexpected 101 Switching Protocols")
                continue  # interim response (100 Continue, 103 Early Hints): the real one follows
            headers = _Headers()
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if not sep or not name or name != name.strip():
                    raise _BadResponse(f"malformed header line: {line[:80]!r}")
                key = name.decode("latin-1").lower()
                text = value.strip().decode("latin-1")
                prior = dict.get(headers, key)
                dict.__setitem__(headers, key, text if prior is None else f"{prior}, {text}")
            self.status, self.headers = status, headers
            connection = dict.get(headers, "connection", "").lower()
            if version == b"HTTP/1.0":
                self.reusable = self.reusable and "keep-alive" in connection
            elif "close" in connection:
                self.reusable = False
            encoding = dict.get(headers, "transfer-encoding")
            length = dict.get(headers, "content-length")
            if status in (204, 304):
                self.mode = _NO_BODY
            elif encoding is not None:
                if encoding.rsplit(",", 1)[-1].strip().lower() == "chunked":
                    self.mode, self.chunk_state = _CHUNKED, _CH_SIZE
                else:
                    self.mode, self.reusable = _UNTIL_CLOSE, False
            elif length is not None:
                if not length.isdigit():
                    raise _BadResponse(f"bad Content-Length {length[:20]!r}")
                self.mode, self.remaining = _LENGTH, int(length)
            else:
                self.mode, self.reusable = _UNTIL_CLOSE, False
        mode = self.mode
        if mode == _LENGTH:
            take = min(self.remaining, len(buf))
            if take:
                self._keep(buf, take)
                del buf[:take]
                self.remaining -= take
            if self.remaining == 0:
                self._finish()
        elif mode == _NO_BODY:
            self._finish()
        elif mode == _CHUNKED:
            self._parse_chunked(buf)
        else:  # _UNTIL_CLOSE: everything until EOF is the body
            self._keep(buf, len(buf))
            buf.clear()

    def _parse_chunked(self, buf: bytearray) -> None:
        while True:
            state = self.chunk_state
            if state == _CH_DATA:
                take = min(self.remaining, len(buf))
                self._keep(buf, take)
                del buf[:take]
                self.remaining -= take
                if self.remaining:
                    return
                self.chunk_state = _CH_DATA_END
                continue
            if state == _CH_DATA_END:
                if len(buf) < 2:
                    return
                if buf[:2] != b"\r\n":
                    raise _BadResponse("chunk not followed by CRLF")
                del buf[:2]
                self.chunk_state = _CH_SIZE
                continue
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > _MAX_HEAD:
                    raise _BadResponse("chunk header too large")
                return
            line = bytes(buf[:end])
            del buf[:end + 2]
            if state == _CH_SIZE:
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise _BadResponse(f"bad chunk size {size_text[:20]!r}") from None
                if size < 0:
                    raise _BadResponse("negative chunk size")
                if size == 0:
                    self.chunk_state = _CH_TRAILER
                else:
                    self.chunk_state, self.remaining = _CH_DATA, size
            elif not line:  # _CH_TRAILER: an empty line ends the message
                self._finish()
                return

    def _keep(self, buf: bytearray, n: int) -> None:
        room = _MAX_KEEP - len(self.body)
        if room > 0:
            self.body += buf[:min(n, room)]

    def _finish(self) -> None:
        waiter, headers = self.waiter, self.headers
        assert waiter is not None and headers is not None
        if self.buf:
            self.reusable = False  # bytes beyond the response: never trust this connection again
        self.waiter = None
        if not waiter.done():
            waiter.set_result(_Response(self.status, headers, bytes(self.body)))


_Origin = tuple[str, str, int]  # (scheme, host, port)


class _Target:
    """A parsed endpoint: where to connect and what to put in the request line."""

    __slots__ = ("origin", "host_header", "path")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in ("http", "https") or not host:
            raise ValueError("endpoint must be an absolute http(s) URL")
        port = parts.port or (443 if scheme == "https" else 80)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        shown = f"[{host}]" if ":" in host else host
        if port != (443 if scheme == "https" else 80):
            shown = f"{shown}:{port}"
        # Header injection guard: the request line and Host header are built from the URL.
        for text in (path, shown):
            if not text.isascii() or any(ord(ch) <= 32 or ord(ch) == 127 for ch in text):
                raise ValueError("endpoint contains characters not allowed in a request line")
        self.origin: _Origin = (scheme, host, port)
        self.host_header = shown
        self.path = path


class PushSender:
    """Sends batches of Web Push messages concurrently over a reused connection pool."""

    #: Idle pooled connections older than this are closed instead of reused (push services
    #: drop idle keep-alive connections after a few minutes; a fresh handshake beats a reset).
    idle_timeout = 50.0

    def __init__(
        self,
        signer: VapidSigner,
        *,
        is_allowed_endpoint: Callable[[str], bool],
        concurrency: int = 256,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.signer = signer
        self.is_allowed_endpoint = is_allowed_endpoint
        self.concurrency = concurrency
        self.timeout = timeout
        self.ssl_context = ssl_context
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._client_ssl: ssl.SSLContext | None = None
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
            self._semaphore = None
            self._idle = {}
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
        """Close the connection pool and stop the loop thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None or self._pid != os.getpid():
            return

        async def shutdown() -> None:
            idle, self._idle = self._idle, {}
            for conns in idle.values():
                for conn in conns:
                    conn.close()
            await asyncio.sleep(0)  # let the transports start closing

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
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        results: list[PushResult | None] = [None] * len(items)
        # A fixed pool of workers pulling from one iterator (safe: single-threaded loop) instead
        # of one task per push keeps memory flat for 10k+ batches. Each worker encrypts its
        # next push while the others' requests are on the wire.
        work = iter(enumerate(items))

        async def worker() -> None:
            for index, push in work:
                results[index] = await self._send_one(push)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(items)))))
        return results  # type: ignore[return-value]

    async def _send_one(self, push: OutgoingPush) -> PushResult:
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
        assert self._semaphore is not None
        async with self._semaphore:
            # Encrypt right before sending: the ephemeral key is used once and never queued.
            try:
                body = encrypt_aes128gcm(push.payload, push.p256dh, push.auth)
                authorization = self.signer.header_for(push.endpoint)
            except ValueError as exc:
                return PushResult(push.key, PushOutcome.FAILED, None, f"cannot encrypt: {exc}")
            urgency = push.urgency if push.urgency in _URGENCIES else "normal"
            topic = f"Topic: {sanitize_topic(push.topic)}\r\n" if push.topic else ""
            request = (
                f"POST {target.path} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                f"User-Agent: statuspage-push/1\r\nTTL: {max(0, int(push.ttl))}\r\n"
                f"Urgency: {urgency}\r\n{topic}Content-Encoding: aes128gcm\r\n"
                f"Content-Type: application/octet-stream\r\nAuthorization: {authorization}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode("latin-1") + body
            try:
                async with asyncio.timeout(self.timeout):
                    response = await self._exchange(target.origin, request)
            except ssl.SSLCertVerificationError as exc:
                # Retrying will not fix a certificate the pinned trust store rejects.
                detail = exc.verify_message or exc.reason or str(exc)
                return PushResult(push.key, PushOutcome.FAILED, None,
                                  f"TLS certificate verification failed: {detail}")
            except TimeoutError:
                return PushResult(push.key, PushOutcome.RETRY, None,
                                  f"timeout after {self.timeout:g}s")
            except (OSError, ssl.SSLError) as exc:  # ConnectionError, DNS, TLS, bad response
                return PushResult(push.key, PushOutcome.RETRY, None,
                                  f"connection error: {type(exc).__name__}: {exc}"[:300])
        status = response.status
        if 200 <= status < 300:
            return PushResult(push.key, PushOutcome.SENT, status)
        text = response.body[:4 * _REASON_BODY_CHARS].decode("utf-8", "replace")
        outcome, reason, retry_after = classify(status, response.headers, text)
        return PushResult(push.key, outcome, status, reason, retry_after)

    async def _exchange(self, origin: _Origin, request: bytes) -> _Response:
        """POST ``request`` on a pooled connection to ``origin``; retry once if a reused
        keep-alive connection turns out to have been closed by the server while idle."""
        for attempt in (0, 1):
            conn = self._checkout(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin)
            try:
                response = await conn.request(request)
            except _ConnectionClosed as exc:
                conn.close()
                if reused and not exc.received and attempt == 0:
                    continue  # the server closed it idle; nothing of ours was answered
                raise
            except BaseException:
                conn.abort()  # timeout/cancel mid-request: the connection is out of sync
                raise
            if conn.usable():
                conn.last_used = time.monotonic()
                idle = self._idle.setdefault(origin, [])
                if len(idle) < self.concurrency:
                    idle.append(conn)
                else:
                    conn.close()
            else:
                conn.close()
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkout(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        too_old = time.monotonic() - self.idle_timeout
        while idle:
            conn = idle.pop()
            if conn.usable() and conn.last_used > too_old:
                return conn
            conn.close()
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            context = self.ssl_context
            if context is None:
                if self._client_ssl is None:
                    self._client_ssl = ssl.create_default_context()
                context = self._client_ssl
        _, conn = await loop.create_connection(
            lambda: _Connection(loop), host, port, ssl=context,
            server_hostname=host if context is not None else None,
        )
        return conn


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional (e.g. Windows)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def results_by_outcome(results: Iterable[PushResult]) -> dict[PushOutcome, list[PushResult]]:
    """Group results; convenience for callers that record counts per outcome."""
    grouped: dict[PushOutcome, list[PushResult]] = {o: [] for o in PushOutcome}
    for result in results:
        grouped[result.outcome].append(result)
    return grouped

