"""Concurrent Web Push sending over one pooled aiohttp session (no Flask, no database).

``PushSender.send_all`` is synchronous so RQ jobs and CLI commands can call it directly, but the
requests run on a persistent asyncio loop in a daemon thread owned by the sender. Keeping the
loop (and its ``ClientSession``) alive between calls means a worker that processes many batch
jobs reuses its keep-alive TLS connections to the push services instead of re-handshaking for
every batch.
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

import aiohttp

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


class PushSender:
    """Sends batches of Web Push messages concurrently over a reused connection pool."""

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
        self._session: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
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
            self._session = None
            self._semaphore = None
            return loop

    async def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily inside the loop: aiohttp binds sessions to the running loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency,
                limit_per_host=self.concurrency,
                ssl=self.ssl_context if self.ssl_context is not None else True,
                ttl_dns_cache=300,
                keepalive_timeout=60,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers={"User-Agent": "statuspage-push/1"},
                # Push services answer with tiny bodies we only quote in failure reasons.
                auto_decompress=False,
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._session

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
            if self._session is not None:
                await self._session.close()

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
        session = await self._get_session()
        results: list[PushResult | None] = [None] * len(items)
        # A fixed pool of workers pulling from one iterator (safe: single-threaded loop) instead
        # of one task per push keeps memory flat for 10k+ batches.
        work = iter(enumerate(items))

        async def worker() -> None:
            for index, push in work:
                results[index] = await self._send_one(session, push)

        await asyncio.gather(*(worker() for _ in range(min(self.concurrency, len(items)))))
        return results  # type: ignore[return-value]

    async def _send_one(self, session: aiohttp.ClientSession, push: OutgoingPush) -> PushResult:
        try:
            allowed = bool(self.is_allowed_endpoint(push.endpoint))
        except Exception:
            allowed = False
        if not allowed:
            return PushResult(push.key, PushOutcome.FAILED, None, "endpoint not allowed")
        if len(push.payload) > MAX_PLAINTEXT:
            return PushResult(push.key, PushOutcome.FAILED, None,
                              f"payload too large ({len(push.payload)} > {MAX_PLAINTEXT} bytes)")
        assert self._semaphore is not None
        async with self._semaphore:
            # Encrypt right before sending: the ephemeral key is used once and never queued.
            try:
                body = encrypt_aes128gcm(push.payload, push.p256dh, push.auth)
                authorization = self.signer.header_for(push.endpoint)
            except ValueError as exc:
                return PushResult(push.key, PushOutcome.FAILED, None, f"cannot encrypt: {exc}")
            headers = {
                "TTL": str(max(0, int(push.ttl))),
                "Urgency": push.urgency if push.urgency in _URGENCIES else "normal",
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
                "Authorization": authorization,
            }
            if push.topic:
                headers["Topic"] = sanitize_topic(push.topic)
            try:
                async with session.post(push.endpoint, data=body, headers=headers,
                                        allow_redirects=False) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        # Drain the (tiny) body so the connection goes back to the pool.
                        await resp.read()
                        return PushResult(push.key, PushOutcome.SENT, status)
                    raw = await resp.content.read(4 * _REASON_BODY_CHARS)
                    text = raw.decode("utf-8", "replace")
                    outcome, reason, retry_after = classify(status, resp.headers, text)
                    return PushResult(push.key, outcome, status, reason, retry_after)
            except aiohttp.ClientConnectorCertificateError as exc:
                # Retrying will not fix a certificate the pinned trust store rejects.
                return PushResult(push.key, PushOutcome.FAILED, None,
                                  f"TLS certificate verification failed: {exc.certificate_error}")
            except TimeoutError:
                return PushResult(push.key, PushOutcome.RETRY, None,
                                  f"timeout after {self.timeout:g}s")
            except aiohttp.InvalidURL as exc:
                return PushResult(push.key, PushOutcome.FAILED, None, f"invalid endpoint URL: {exc}")
            except (aiohttp.ClientError, OSError) as exc:
                return PushResult(push.key, PushOutcome.RETRY, None,
                                  f"connection error: {type(exc).__name__}: {exc}"[:300])


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

