"""A real HTTP(S) Web Push service, for tests and local trials.

It speaks the protocol the way FCM / Mozilla autopush / Apple do: it checks TTL, the
``aes128gcm`` content encoding, the VAPID ``Authorization`` header against the subscription's
applicationServerKey with aud = this server's origin, the 4096-byte body limit, then decrypts the
message with the subscription's private key (as the browser would) and answers 201 + Location.
Tests can force answers (429 with Retry-After, 404, 410, 413, 5xx...), add latency, and read back
every decrypted payload. A Declarative Web Push message (``"web_push": 8030``) is checked the way
Safari parses it; a malformed one gets 400.

In-process::

    with PushSimulator(tls=True) as sim:
        sub = sim.new_subscription(vapid_public_key)
        ...  # send to sub.endpoint with ssl_context=sim.ssl_context_for_clients()
        sim.wait_for(1)

Standalone: ``python -m statuspage.push.simulator --port 8099 [--tls]`` (adds a JSON control API
under ``/_sim/``).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import ipaddress
import itertools
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from multidict import CIMultiDict

from ..validation import ascii_int
from .crypto import (
    b64url_decode,
    b64url_encode,
    decrypt_aes128gcm,
    endpoint_origin,
    load_private_key,
    public_key_b64,
    verify_vapid_header,
)
from .sender import _new_event_loop

__all__ = ["Attempt", "PushSimulator", "ReceivedMessage", "SimSubscription", "declarative_problem"]

MAX_BODY = 4096


@dataclass(slots=True)
class SimSubscription:
    token: str
    endpoint: str
    p256dh: str  # b64url 65-byte public point
    auth: str  # b64url 16 bytes
    private_key: ec.EllipticCurvePrivateKey
    application_server_key: str | None

    @property
    def private_key_b64(self) -> str:
        return b64url_encode(self.private_key.private_numbers().private_value.to_bytes(32, "big"))

    def to_json(self) -> dict[str, Any]:
        """The shape of the browser's ``PushSubscription.toJSON()``."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass(slots=True)
class ReceivedMessage:
    token: str
    headers: Mapping[str, str]  # case-insensitive copy of the request headers
    body_len: int
    plaintext: bytes
    payload: dict[str, Any] | None  # plaintext JSON-decoded when it is a JSON object
    claims: dict[str, Any]
    received_at: float

    @property
    def declarative(self) -> bool:
        """A Declarative Web Push message (checked by ``declarative_problem`` on arrival)."""
        return self.payload is not None and self.payload.get("web_push") == 8030

    def to_json(self) -> dict[str, Any]:
        try:
            text: str | None = self.plaintext.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {"token": self.token, "headers": dict(self.headers), "bodyLen": self.body_len,
                "plaintext": text, "payload": self.payload, "claims": self.claims,
                "receivedAt": self.received_at}


@dataclass(slots=True)
class Attempt:
    """Every request to /push/<token>, whatever the answer (forced statuses included)."""
    token: str
    status: int
    reason: str
    headers: Mapping[str, str]
    received_at: float


@dataclass(slots=True)
class _Sub:
    token: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None
    gone: bool = False


@dataclass(slots=True)
class _Forced:
    status: int
    retry_after: int | None
    remaining: int | None  # None = until reset


class PushSimulator:
    """A threaded aiohttp push service. Thread-safe; start()/stop() or use as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls: bool = False, *,
                 control_api: bool = False) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.control_api = control_api
        self.cert_path: str | None = None
        self._key_path: str | None = None
        self._tmpdir: str | None = None
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._subs: dict[str, _Sub] = {}
        self._forced: dict[str, _Forced] = {}
        self._messages: list[ReceivedMessage] = []
        self._attempts: list[Attempt] = []
        self._delay = 0.0
        self._generation = 0  # bumped by reset(): requests that arrived before it are not recorded
        self._verified: set[str] = set()  # VAPID headers whose signature already verified
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("simulator not started")
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def origin(self) -> str:
        return endpoint_origin(self.base_url)

    def start(self) -> PushSimulator:
        if self._thread is not None:
            return self
        server_ssl = self._make_tls() if self.tls else None
        loop = _new_event_loop()
        started = threading.Event()
        failure: list[BaseException] = []

        async def boot() -> None:
            app = web.Application(client_max_size=1 << 20)
            app.router.add_post("/push/{token}", self._handle_push)
            if self.control_api:
                app.router.add_post("/_sim/subscriptions", self._api_new_subscription)
                app.router.add_get("/_sim/messages", self._api_messages)
                app.router.add_post("/_sim/respond", self._api_respond)
                app.router.add_post("/_sim/reset", self._api_reset)
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port, ssl_context=server_ssl, backlog=2048)
            await site.start()
            self._runner = runner
            self.port = runner.addresses[0][1]

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:
                failure.append(exc)
                started.set()
                return
            started.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="push-simulator", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        loop, thread, runner = self._loop, self._thread, self._runner
        if loop is None or thread is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = self._runner = None
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = self.cert_path = self._key_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _make_tls(self) -> ssl.SSLContext:
        """Self-signed certificate for localhost / 127.0.0.1 / ::1 (and the bind host)."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "push-simulator.localhost")])
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        try:
            bind_ip = ipaddress.ip_address(self.host)
            if x509.IPAddress(bind_ip) not in sans:
                sans.append(x509.IPAddress(bind_ip))
        except ValueError:
            if self.host != "localhost":
                sans.append(x509.DNSName(self.host))
        now = dt.datetime.now(dt.UTC)
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            # A self-signed trust anchor that is also the server certificate; these extensions
            # keep OpenSSL 3's strict verification (Python 3.13 default) happy.
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        self._tmpdir = tempfile.mkdtemp(prefix="push-sim-")
        cert_path = Path(self._tmpdir, "cert.pem")
        key_path = Path(self._tmpdir, "key.pem")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        key_path.chmod(0o600)
        self.cert_path, self._key_path = str(cert_path), str(key_path)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert_path, self._key_path)
        return ctx

    @property
    def key_path(self) -> str | None:
        """The TLS private key file (with tls=True), e.g. for another test server on 127.0.0.1."""
        return self._key_path

    def ssl_context_for_clients(self) -> ssl.SSLContext:
        """A client SSLContext that trusts (only) this simulator's certificate."""
        if not self.tls or self.cert_path is None:
            raise RuntimeError("simulator is not running with tls=True")
        return ssl.create_default_context(cafile=self.cert_path)

    # ------------------------------------------------------------------ subscriptions

    def new_subscription(self, application_server_key: str | None) -> SimSubscription:
        """Create a subscription as a browser would, with fresh p256dh and auth keys."""
        token = secrets.token_urlsafe(24)
        return self.register_subscription(token, ec.generate_private_key(ec.SECP256R1()),
                                          b64url_encode(secrets.token_bytes(16)),
                                          application_server_key)

    def register_subscription(
        self,
        endpoint_token: str,
        p256dh_private_key: ec.EllipticCurvePrivateKey | str,
        auth: str | bytes,
        application_server_key: str | None,
    ) -> SimSubscription:
        """Register keys owned elsewhere (private key object or b64url scalar; auth b64url/raw)."""
        if isinstance(p256dh_private_key, str):
            p256dh_private_key = load_private_key(p256dh_private_key)
        auth_raw = auth if isinstance(auth, bytes) else b64url_decode(auth)
        if len(auth_raw) != 16:
            raise ValueError("auth must be 16 bytes")
        with self._lock:
            self._subs[endpoint_token] = _Sub(endpoint_token, p256dh_private_key, auth_raw,
                                              application_server_key)
        return SimSubscription(
            token=endpoint_token,
            endpoint=f"{self.base_url}/push/{endpoint_token}",
            p256dh=public_key_b64(p256dh_private_key),
            auth=b64url_encode(auth_raw),
            private_key=p256dh_private_key,
            application_server_key=application_server_key,
        )

    def expire(self, token: str) -> None:
        """Mark a subscription gone (the browser unsubscribed): it answers 410 from now on."""
        with self._lock:
            self._subs[token].gone = True

    def remove(self, token: str) -> None:
        """Forget a subscription: it answers 404 from now on."""
        with self._lock:
            self._subs.pop(token, None)

    # ------------------------------------------------------------------ test controls

    def respond_with(self, token: str, status: int, *, retry_after: int | None = None,
                     times: int | None = None) -> None:
        """Answer ``status`` to the next ``times`` requests to ``token`` (None = until reset)."""
        with self._lock:
            self._forced[token] = _Forced(status, retry_after, times)

    def set_delay(self, seconds: float) -> None:
        """Wait this long before answering any push request (to exercise client timeouts)."""
        with self._lock:
            self._delay = max(0.0, float(seconds))

    def received(self, token: str | None = None) -> list[ReceivedMessage]:
        with self._lock:
            return [m for m in self._messages if token is None or m.token == token]

    def attempts(self, token: str | None = None) -> list[Attempt]:
        with self._lock:
            return [a for a in self._attempts if token is None or a.token == token]

    def wait_for(self, count: int, timeout: float = 10, token: str | None = None
                 ) -> list[ReceivedMessage]:
        """Block until at least ``count`` messages (for ``token``) arrived; TimeoutError if not."""
        deadline = time.monotonic() + timeout

        def matching() -> list[ReceivedMessage]:
            return [m for m in self._messages if token is None or m.token == token]

        with self._cond:
            while True:
                found = matching()
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"expected {count} push messages, got {len(found)}")
                self._cond.wait(remaining)

    def reset(self) -> None:
        """Forget messages, attempts, forced statuses and delay (subscriptions stay). A request
        still being answered (a delay) when this runs is not recorded afterwards either."""
        with self._lock:
            self._generation += 1
            self._messages.clear()
            self._attempts.clear()
            self._forced.clear()
            self._delay = 0.0
            for sub in self._subs.values():
                sub.gone = False

    # ------------------------------------------------------------------ the push endpoint

    async def _handle_push(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        body = await request.read()
        with self._lock:
            delay, generation = self._delay, self._generation
        if delay:
            await asyncio.sleep(delay)
            with self._lock:
                if generation != self._generation:  # reset while it waited: it belongs to the past
                    return web.Response(status=503, text="the simulator was reset")
        headers = CIMultiDict(request.headers)
        status, reason, extra, message = self._process(token, headers, body)
        now = time.time()
        with self._cond:
            self._attempts.append(Attempt(token, status, reason, headers, now))
            if message is not None:
                self._messages.append(message)
                self._cond.notify_all()
        if status == 201:
            return web.Response(status=201, headers=extra)
        return web.Response(status=status, text=reason, headers=extra)

    def _process(self, token: str, headers: CIMultiDict[str], body: bytes
                 ) -> tuple[int, str, dict[str, str], ReceivedMessage | None]:
        """Validate like a real push service; returns (status, reason, headers, message)."""
        with self._lock:
            sub = self._subs.get(token)
            forced = self._forced.get(token)
            if forced is not None and forced.remaining is not None:
                forced.remaining -= 1
                if forced.remaining <= 0:
                    del self._forced[token]
        if sub is None:
            return 404, "no such subscription", {}, None
        if sub.gone:
            return 410, "subscription is gone", {}, None
        if forced is not None:
            extra = {}
            if forced.retry_after is not None:
                extra["Retry-After"] = str(forced.retry_after)
            return forced.status, f"forced {forced.status} by the simulator", extra, None
        ttl = ascii_int((headers.get("TTL") or "").strip())
        if ttl is None or ttl < 0:
            return 400, "TTL header missing or not a non-negative integer", {}, None
        if headers.get("Content-Encoding", "").strip().lower() != "aes128gcm":
            return 415, "Content-Encoding must be aes128gcm", {}, None
        authorization = headers.get("Authorization")
        if not authorization:
            return 401, "missing VAPID Authorization header", {}, None
        try:
            known = authorization in self._verified
            claims = verify_vapid_header(authorization, sub.application_server_key, self.origin,
                                         check_signature=not known)
        except ValueError as exc:
            return 403, f"VAPID: {exc}", {}, None
        if not known:
            # ECDSA verification is the costliest step; real senders reuse one header per origin.
            if len(self._verified) > 10000:
                self._verified.clear()
            self._verified.add(authorization)
        if len(body) > MAX_BODY:
            return 413, f"body is {len(body)} bytes; the limit is {MAX_BODY}", {}, None
        try:
            plaintext = decrypt_aes128gcm(body, sub.private_key, sub.auth)
        except ValueError as exc:
            return 400, f"cannot decrypt: {exc}", {}, None
        try:
            decoded = json.loads(plaintext)
            payload = decoded if isinstance(decoded, dict) else None
        except ValueError:
            payload = None
        if payload is not None and "web_push" in payload:
            problem = declarative_problem(payload)
            if problem:
                # Safari would drop it (or show its fallback): a test must hear about it.
                return 400, f"invalid declarative push message: {problem}", {}, None
        message = ReceivedMessage(token, headers, len(body), plaintext, payload, claims,
                                  time.time())
        location = f"{self.base_url}/m/{token}/{next(self._ids)}"
        return 201, "created", {"Location": location}, message

    # ------------------------------------------------------------------ JSON control API

    async def _api_new_subscription(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        sub = self.new_subscription(data.get("applicationServerKey"))
        return web.json_response({**sub.to_json(), "token": sub.token,
                                  "privateKey": sub.private_key_b64}, status=201)

    async def _api_messages(self, request: web.Request) -> web.Response:
        token = request.query.get("token")
        return web.json_response([m.to_json() for m in self.received(token)])

    async def _api_respond(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        try:
            self.respond_with(str(data["token"]), int(data["status"]),
                              retry_after=_opt_int(data.get("retry_after")),
                              times=_opt_int(data.get("times")))
        except (KeyError, TypeError, ValueError) as exc:
            return web.json_response({"error": f"bad request: {exc}"}, status=400)
        return web.json_response({"ok": True})

    async def _api_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


_NOTIFICATION_STRINGS = ("body", "lang", "tag", "icon", "image", "badge")


def declarative_problem(message: Mapping[str, Any]) -> str | None:
    """What is wrong with a Declarative Web Push message, or None: the members the WebKit
    explainer and the Push API draft define, with their types (title and navigate required)."""
    if type(message.get("web_push")) is not int or message["web_push"] != 8030:
        return "web_push must be the integer 8030"
    notification = message.get("notification")
    if not isinstance(notification, dict):
        return "notification must be an object"
    if not isinstance(notification.get("title"), str) or not notification["title"].strip():
        return "notification.title must be a non-empty string"
    navigate = notification.get("navigate")
    if not isinstance(navigate, str) or urlsplit(navigate).scheme not in ("http", "https") \
            or not urlsplit(navigate).netloc:
        return "notification.navigate must be an absolute http(s) URL"
    for name in _NOTIFICATION_STRINGS:
        if name in notification and not isinstance(notification[name], str):
            return f"notification.{name} must be a string"
    if "dir" in notification and notification["dir"] not in ("auto", "ltr", "rtl"):
        return "notification.dir must be auto, ltr or rtl"
    for name in ("silent", "renotify", "requireInteraction"):
        if name in notification and not isinstance(notification[name], bool):
            return f"notification.{name} must be true or false"
    if "mutable" in message and not isinstance(message["mutable"], bool):
        return "mutable must be true or false"
    badge = message.get("app_badge")
    if badge is not None and (type(badge) is not int or badge < 0):
        return "app_badge must be a non-negative integer"
    return None


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Web Push service simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a self-signed cert")
    args = parser.parse_args(argv)
    sim = PushSimulator(args.host, args.port, args.tls, control_api=True).start()
    print(sim.base_url, flush=True)
    if sim.cert_path:
        print(f"certificate: {sim.cert_path}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()


if __name__ == "__main__":
    main()
