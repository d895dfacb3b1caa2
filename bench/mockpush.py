"""A lean HTTPS mock push service for the fan-out benchmark.

It shares the machine's cores with the workers, PostgreSQL and Redis, so it is a bare asyncio
protocol on uvloop rather than a web framework: it parses HTTP/1.1 keep-alive requests, checks
that every push carries the Web Push headers (TTL, ``Content-Encoding: aes128gcm``,
``Content-Type``, a VAPID ``Authorization`` in any form RFC 8292 allows) and a body of
104..4096 bytes, and
answers ``201 Created`` (after ``--latency-ms`` if given). It does not decrypt: the project's own
simulator (``statuspage.push.simulator``) proves in ``tests/push/test_fast_path.py`` that the very same
send path produces messages a push service verifies and decrypts.

Run: ``python bench/mockpush.py --port 8443 --cert cert.pem --key key.pem [--latency-ms 20]``.
Several processes may serve one port (``SO_REUSEPORT``). It prints ``ready`` once listening and,
on SIGTERM/SIGINT, one JSON line with its counters.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import socket
import ssl
import sys

_REQUIRED = (b"ttl", b"content-encoding", b"authorization")
_MIN_BODY = 16 + 4 + 1 + 65 + 1 + 16  # aes128gcm header + delimiter + tag: an empty message
_MAX_BODY = 4096

# One auth-param of RFC 9110 section 11.2: a name, "=" with optional spaces, a token or a quoted string.
_AUTH_PARAM = re.compile(rb'[ \t]*([A-Za-z]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^ \t,"]+)[ \t]*')


def vapid_params(value: bytes) -> dict[bytes, bytes] | None:
    """t and k of a VAPID Authorization header, or None when it is not one.

    Every form RFC 8292 allows: the scheme in any case, t and k in either order, separated by a
    comma with or without spaces (Node's web-push sends ``vapid t=..., k=...``), values as
    tokens or quoted strings. JWTs and base64url keys contain no comma, so splitting on commas is
    exact."""
    if value.startswith(b"vapid t=") and value.count(b",") == 1 and b" " not in value[6:] \
            and b'"' not in value and b"\t" not in value:  # what this project sends: no regex
        t, sep, k = value[8:].partition(b",k=")
        if sep and t and k:
            return {b"t": t, b"k": k}
    scheme, _, rest = value.strip().partition(b" ")
    if scheme.lower() != b"vapid":
        return None
    params: dict[bytes, bytes] = {}
    for item in rest.split(b","):
        match = _AUTH_PARAM.fullmatch(item)
        if match is None:
            return None
        raw = match[2]
        params[match[1].lower()] = raw[1:-1] if raw.startswith(b'"') else raw
    return params if params.get(b"t") and params.get(b"k") else None


stats = {"requests": 0, "created": 0, "rejected": 0, "connections": 0, "bytes": 0}


def _response(status: str, body: bytes = b"", extra: bytes = b"") -> bytes:
    return (b"HTTP/1.1 " + status.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n" + extra + b"\r\n" + body)


_CREATED = _response("201 Created", extra=b"Location: https://push.invalid/m/1\r\n")
_NOT_FOUND = _response("404 Not Found", b"not found")


# One read buffer for every connection: uvloop fills it and calls buffer_updated() right away, so
# it is never shared by two reads. (A plain Protocol makes uvloop's TLS layer allocate a 256 KB
# bytes object per read.)
_SCRATCH = bytearray(256 * 1024)
_SCRATCH_VIEW = memoryview(_SCRATCH)


class PushProtocol(asyncio.BufferedProtocol):
    __slots__ = ("transport", "buf", "loop", "latency")

    def __init__(self, loop: asyncio.AbstractEventLoop, latency: float) -> None:
        self.loop = loop
        self.latency = latency
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        stats["connections"] += 1

    def get_buffer(self, sizehint: int) -> memoryview:
        return _SCRATCH_VIEW

    def buffer_updated(self, nbytes: int) -> None:
        buf = self.buf
        buf += _SCRATCH_VIEW[:nbytes]
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._close(b"400 Bad Request", b"header too large")
                return
            head = bytes(buf[:end])
            lines = head.split(b"\r\n")
            length = 0
            found = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                found[name] = value.strip()
            try:
                length = int(found.get(b"content-length", b"0"))
            except ValueError:
                self._close(b"400 Bad Request", b"bad content-length")
                return
            total = end + 4 + length
            if len(buf) < total:
                return
            del buf[:total]
            self._answer(lines[0], found, length)

    def _answer(self, request_line: bytes, headers: dict, length: int) -> None:
        stats["requests"] += 1
        stats["bytes"] += length
        method, _, rest = request_line.partition(b" ")
        if method != b"POST" or not rest.startswith(b"/push/"):
            stats["rejected"] += 1
            self._send(_NOT_FOUND)
            return
        problem = None
        for name in _REQUIRED:
            if not headers.get(name):
                problem = b"missing " + name + b" header"
                break
        else:
            if headers[b"content-encoding"].lower() != b"aes128gcm":
                problem = b"content-encoding must be aes128gcm"
            elif vapid_params(headers[b"authorization"]) is None:
                problem = b"authorization must be vapid t=<jwt>, k=<key> (RFC 8292)"
            elif not headers[b"ttl"].isdigit():
                problem = b"bad ttl"
            elif not _MIN_BODY <= length <= _MAX_BODY:
                problem = b"body length out of range"
        if problem is not None:
            stats["rejected"] += 1
            self._send(_response("400 Bad Request", problem))
            return
        stats["created"] += 1
        self._send(_CREATED)

    def _send(self, data: bytes) -> None:
        if self.latency:
            self.loop.call_later(self.latency, self._write, data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def _close(self, status: bytes, body: bytes) -> None:
        stats["rejected"] += 1
        if self.transport is not None:
            self.transport.write(_response(status.decode(), body, b"Connection: close\r\n"))
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)

    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    latency = max(0.0, args.latency_ms / 1000.0)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    sock.listen(4096)
    server = loop.run_until_complete(
        loop.create_server(lambda: PushProtocol(loop, latency), sock=sock, ssl=ctx, backlog=4096))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    loop.run_until_complete(stop.wait())
    server.close()
    print(json.dumps(stats), flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
