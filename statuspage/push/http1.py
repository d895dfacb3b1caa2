"""Pooled keep-alive HTTP/1.1 to push services: the ``Transport`` that ``PushSender`` uses.

Per push-service origin, a ``_Pool`` queues requests and keeps connections. A response hands its
connection straight to the next queued request from the protocol callback; a new connection opens
only when requests have waited ``Limits.grow_after`` (at most ``max_connecting`` handshakes at a
time, ``max_connections`` per origin), so the pool grows to what the service's latency needs: a
few connections at 0 ms, a hundred or more at tens of ms, instead of one TLS handshake (~0.7 ms
of CPU) per concurrent request. Requests queued while the sender encrypts a run of messages are
written back to back when it next yields to the loop: a burst of writes wakes the push service's
side of every connection once per burst, which on this machine's loopback halved the CPU cost of
a write compared with writing each request as soon as it was ready.

It speaks ordinary HTTP/1.1: TLS with certificate and host name verification, keep-alive,
Content-Length, chunked and close-delimited responses, interim 1xx, ``Connection: close``. A
request is sent once more, on another connection, only when a reused keep-alive connection turns
out to have been closed by the server before any byte of the answer arrived (nothing was
delivered; that is a reconnect, not a delivery retry). Redirects are the sender's business (it
never follows them).

Responses are parsed by ``httptools`` (llhttp, the parser of Node.js and uvicorn) instead of the
hand-written parser this module had before (git 450d1c8, ``push/sender.py``), because it is no
slower. Measured on this machine (2 vCPU Xeon, Python 3.11, httptools 0.9.0, h11 0.16), feeding
one response through the connection protocol and completing its request, bookkeeping included,
15 interleaved rounds of 100,000 (other work was loading the cores, hence min and median): a
short ``201 Created`` (Content-Length, Location) took 6.7 / 8.4 us with httptools against
6.8 / 9.2 us with ours; an FCM-sized answer (9 headers) 12.8 / 18.1 us against 14.2 / 19.7 us.
``h11`` took 54-77 us (its connection state machine is pure Python), so it was not used.

aiohttp is not used for the client: its general request machinery cost ~170 us of CPU per push,
twice the encryption.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import ssl
import time
from collections.abc import Sequence

import httptools

from .transport import Headers, Limits, OnDone, Origin, Response

__all__ = ["BadResponse", "ConnectionClosed", "HTTP1Transport"]

_MAX_HEAD = 64 * 1024  # bytes of status line and headers we wait for at most
_MAX_KEEP = 4096  # response body bytes kept (only quoted in failure reasons)


class ConnectionClosed(ConnectionError):
    """The peer closed the connection before a complete response arrived."""

    def __init__(self, received: bool, cause: BaseException | None) -> None:
        detail = f": {cause}" if cause else ""
        super().__init__(("connection closed mid-response" if received
                          else "connection closed before any response") + detail)
        self.received = received


class BadResponse(ConnectionError):
    """The peer's bytes are not an HTTP/1.x response we can frame."""


class _Request:
    """One request: its bytes, who to tell when it ends, and where it is.

    Completion is a plain callback run from the protocol callback that saw the response (no
    future, no extra trip through the event loop per push).
    """

    __slots__ = ("data", "on_done", "deadline", "queued_at", "conn", "retried", "done")

    def __init__(self, data: bytes, on_done: OnDone, deadline: float, queued_at: float) -> None:
        self.data = data
        self.on_done = on_done
        self.deadline = deadline
        self.queued_at = queued_at
        self.conn: _Connection | None = None
        self.retried = False
        self.done = False

    def resolve(self, response: Response) -> None:
        if not self.done:
            self.done = True
            self.on_done(response, None)

    def reject(self, exc: BaseException) -> None:
        if not self.done:
            self.done = True
            self.on_done(None, exc)


class _Connection(asyncio.BufferedProtocol):
    """One HTTP/1.1 keep-alive connection carrying one request at a time for its pool.

    A BufferedProtocol: the transport reads into the pool's scratch buffer, which the parser reads
    at once. (With a plain Protocol, uvloop's TLS layer allocates a 256 KB bytes object for every
    read; that was the biggest cost of reading a response.) The httptools parser calls the
    ``on_*`` methods below while it reads.
    """

    __slots__ = ("pool", "transport", "parser", "closed", "reusable", "req", "served", "received",
                 "status", "headers", "head_done", "until_close", "complete", "head_bytes", "body", "last_used")

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = True
        self.req: _Request | None = None
        self.served = 0  # responses completed on this connection
        self.last_used = 0.0
        self._reset()

    def _reset(self) -> None:
        self.received = False
        self.status = 0
        self.headers = Headers()
        self.head_done = False
        self.until_close = False
        self.complete = False
        self.head_bytes = 0
        self.body = bytearray()

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.pool.scratch

    def buffer_updated(self, nbytes: int) -> None:
        req = self.req
        if req is None:
            # Bytes nobody asked for (or after a response that said it was complete): out of sync.
            self.close()
            return
        self.received = True
        if not self.head_done:
            self.head_bytes += nbytes
            if self.head_bytes > _MAX_HEAD:
                self._fail(BadResponse("response headers too large"))
                return
        try:
            self.parser.feed_data(self.pool.scratch[:nbytes])
        except httptools.HttpParserError as exc:
            cause = exc.__context__ if isinstance(exc.__context__, BadResponse) else exc
            if self.complete:
                self.reusable = False  # bytes beyond the response: never trust this connection again
            else:
                self._fail(cause if isinstance(cause, BadResponse) else BadResponse(str(cause) or type(cause).__name__))
                return
        if self.complete:
            self._finish()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost finishes or fails the response

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        req, self.req = self.req, None
        if req is not None and not req.done:
            if self.head_done and self.until_close:
                req.resolve(Response(self.status, self.headers, bytes(self.body)))
            elif self.served and not self.received and not req.retried:
                # A keep-alive connection the server closed while idle, just as we reused it:
                # nothing of ours was answered, so send it once more on another connection.
                req.retried = True
                self.pool.pending.appendleft(req)
            else:
                req.reject(ConnectionClosed(self.received, exc))
        self.pool.lost(self)

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        if self.complete:
            raise BadResponse("bytes beyond the response")

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1").strip()
        prior = dict.get(self.headers, key)
        dict.__setitem__(self.headers, key, text if prior is None else f"{prior}, {text}")

    def on_headers_complete(self) -> None:
        parser = self.parser
        if parser.get_http_version() not in ("1.1", "1.0"):
            raise BadResponse(f"not an HTTP/1.x response (HTTP/{parser.get_http_version()})")
        status = parser.get_status_code()
        if status < 200:
            if status == 101:
                raise BadResponse("unexpected 101 Switching Protocols")
            return  # interim response (100 Continue, 103 Early Hints): the real one follows
        self.status, self.head_done = status, True
        headers = self.headers
        encoding = dict.get(headers, "transfer-encoding")
        if status in (204, 304):
            return
        if encoding is not None:
            self.until_close = encoding.rsplit(",", 1)[-1].strip().lower() != "chunked"
        else:
            self.until_close = not dict.__contains__(headers, "content-length")
        if self.until_close:
            self.reusable = False  # everything until EOF is the body

    def on_body(self, body: bytes) -> None:
        room = _MAX_KEEP - len(self.body)
        if room > 0:
            self.body += body[:room]

    def on_message_complete(self) -> None:
        if not self.head_done:  # the end of an interim response
            self.headers = Headers()
            return
        if not self.parser.should_keep_alive():
            self.reusable = False  # Connection: close, or HTTP/1.0 without keep-alive
        self.complete = True

    # -- requests

    def start(self, req: _Request) -> None:
        assert self.transport is not None
        self._reset()
        self.req = req
        req.conn = self
        self.transport.write(req.data)

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

    def _fail(self, exc: BaseException) -> None:
        req, self.req = self.req, None
        self.close()
        if req is not None:
            req.reject(exc)

    def _finish(self) -> None:
        req = self.req
        assert req is not None
        self.req = None
        self.served += 1
        req.resolve(Response(self.status, self.headers, bytes(self.body)))
        # Hand the connection straight to the next waiting request, from this callback: no
        # connection sits idle while its previous sender's coroutine waits for its turn to run.
        self.pool.release(self)


class _Pool:
    """Connections to one origin and the requests waiting for one (see the module docstring)."""

    def __init__(self, transport: HTTP1Transport, origin: Origin) -> None:
        self.origin = origin
        self.limits = transport.limits
        self.ssl_context = transport.ssl_context if origin.scheme == "https" else None
        self.loop = transport.loop
        self.idle: list[_Connection] = []
        self.busy: set[_Connection] = set()
        self.pending: collections.deque[_Request] = collections.deque()
        self.total = 0  # connections open or being opened
        self.connecting = 0
        self.tasks: set[asyncio.Task[None]] = set()
        # Every read lands here first; the loop runs buffer_updated() right after filling it.
        self.scratch = memoryview(bytearray(64 * 1024))

    def dispatch(self) -> None:
        pending, idle, limits = self.pending, self.idle, self.limits
        while pending:
            req = pending[0]
            if req.done:  # timed out or cancelled while waiting
                pending.popleft()
                continue
            conn = None
            while idle:
                candidate = idle.pop()
                if candidate.usable() and candidate.last_used > time.monotonic() - limits.idle_timeout:
                    conn = candidate
                    break
                candidate.close()
            if conn is None:
                break
            pending.popleft()
            self.busy.add(conn)
            conn.start(req)
        if not pending or self.total >= limits.max_connections:
            return
        # Grow only when requests have queued for a while: at low latency a few connections
        # keep up (and each TLS handshake costs ~0.7 ms of CPU); at tens of ms they do not.
        if self.total and pending[0].queued_at > time.monotonic() - limits.grow_after:
            return
        while len(pending) > self.connecting and self.connecting < limits.max_connecting \
                and self.total < limits.max_connections:
            self.total += 1
            self.connecting += 1
            task = self.loop.create_task(self._open())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def release(self, conn: _Connection) -> None:
        self.busy.discard(conn)
        if conn.usable():
            conn.last_used = time.monotonic()
            self.idle.append(conn)
        else:
            conn.close()  # connection_lost -> lost() updates the counts
        self.dispatch()

    def lost(self, conn: _Connection) -> None:
        self.busy.discard(conn)
        with contextlib.suppress(ValueError):
            self.idle.remove(conn)
        self.total -= 1
        self.dispatch()

    async def _open(self) -> None:
        _, host, port = self.origin
        context = self.ssl_context
        try:
            async with asyncio.timeout(self.limits.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self), host, port, ssl=context,
                    server_hostname=host if context is not None else None)
        except BaseException as exc:
            self.connecting -= 1
            self.total -= 1
            # The request waiting longest gets the error, as if it had connected itself; the
            # others get their own attempt (dispatch opens the next connection) -- unless the
            # certificate was refused, which every other attempt would repeat.
            fail_all = isinstance(exc, ssl.SSLCertVerificationError)
            while self.pending:
                req = self.pending.popleft()
                if not req.done:
                    req.reject(exc if isinstance(exc, Exception) else ConnectionError("connect cancelled"))
                    if not fail_all:
                        break
            if isinstance(exc, asyncio.CancelledError):
                raise
            self.dispatch()
            return
        self.connecting -= 1
        self.release(conn)

    def expire(self, now: float) -> None:
        """Fail requests past their deadline: waiting ones, and in-flight ones (whose
        connection is then out of sync and is aborted)."""
        for req in [r for r in self.pending if r.deadline <= now and not r.done]:
            req.reject(TimeoutError())
        for conn in [c for c in self.busy if c.req is not None and c.req.deadline <= now]:
            req, conn.req = conn.req, None
            assert req is not None
            req.reject(TimeoutError())
            conn.abort()

    def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for conn in [*self.idle, *self.busy]:
            conn.close()
        self.idle.clear()


class HTTP1Transport:
    """The ``Transport`` over pooled keep-alive HTTP/1.1 connections, one pool per origin.

    ``ssl_context`` verifies push services' certificates (default: the system's trust store).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: Limits,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = loop
        self.limits = limits
        self.ssl_context = ssl_context or ssl.create_default_context()
        self._pools: dict[Origin, _Pool] = {}
        self._dirty: set[_Pool] = set()
        self._flush_scheduled = False

    def submit(self, origin: Origin, authority: str, path: str, headers: Sequence[tuple[str, str]], body: bytes,
               deadline: float, on_done: OnDone) -> _Request:
        # Callers build path, authority and header values from checked parts only (no CR/LF).
        head = "".join((f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n", "\r\n".join(map(": ".join, headers)),
                        f"\r\nContent-Length: {len(body)}\r\n\r\n"))
        req = _Request(head.encode("latin-1") + body, on_done, deadline, time.monotonic())
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self, origin)
        pool.pending.append(req)
        self._dirty.add(pool)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        return req

    def _flush(self) -> None:
        """Write the requests queued since the last flush, back to back (see the module docstring)."""
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, set()
        for pool in dirty:
            pool.dispatch()

    def cancel(self, handle: object) -> None:
        req = handle
        assert isinstance(req, _Request)
        if req.done:
            return
        conn = req.conn
        if conn is not None and conn.req is req:
            conn.req = None
            conn.abort()
        req.reject(TimeoutError())

    def expire(self, now: float) -> None:
        for pool in list(self._pools.values()):
            pool.expire(now)

    def close(self) -> None:
        pools, self._pools = self._pools, {}
        self._dirty = set()
        for pool in pools.values():
            pool.close()
