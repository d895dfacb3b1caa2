"""The HTTP/1.1 transport against a scripted server on a real socket: every framing a push service
may answer with (Content-Length, chunked, close-delimited, interim 1xx, Connection: close,
HTTP/1.0), answers that are not HTTP, keep-alive reuse, and the one resend on a keep-alive
connection the server closed before answering."""
from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from statuspage.push.crypto import VapidSigner, b64url_decode, generate_vapid_keypair
from statuspage.push.sender import OutgoingPush, PushOutcome, PushResult, PushSender

Answer = Callable[[int], bytes | None]  # request number (from 0) -> bytes to send; None closes


class ScriptedServer:
    """Reads each request (head + Content-Length body) and writes what ``answer`` returns; a
    connection closes after an answer that ends with ``close`` or when ``answer`` returns None."""

    def __init__(self, answer: Answer, close_after: Callable[[int], bool] = lambda n: False) -> None:
        self.answer, self.close_after = answer, close_after
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.requests = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = int(next(line.split(b":", 1)[1] for line in head.split(b"\r\n")
                                  if line.lower().startswith(b"content-length:")))
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                with self._lock:
                    number = self.requests
                    self.requests += 1
                data = self.answer(number)
                if data is None:
                    return
                conn.sendall(data)
                if self.close_after(number):
                    return

    def endpoint(self, n: int = 0) -> str:
        return f"http://127.0.0.1:{self.port}/push/{n}"

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return generate_vapid_keypair()


@pytest.fixture
def send(keys) -> Iterator[Callable[..., list[PushResult]]]:
    """send(server, count=1): pushes one after another through one sender (so keep-alive shows)."""
    private_key, public_key = keys
    sender = PushSender(VapidSigner(private_key, "mailto:ops@example.com"), is_allowed_endpoint=lambda url: True,
                        concurrency=4, timeout=2)
    servers: list[ScriptedServer] = []

    def run(server: ScriptedServer, count: int = 1) -> list[PushResult]:
        servers.append(server)
        point = b64url_decode(public_key)  # any P-256 point: nobody decrypts here
        return [sender.send_all([OutgoingPush(i, server.endpoint(i), point, bytes(16), b"{}")])[0]
                for i in range(count)]

    yield run
    sender.close()
    for server in servers:
        server.close()


CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nLocation: /m/1\r\n\r\n"


def test_keep_alive_connection_carries_one_request_after_another(send):
    server = ScriptedServer(lambda n: CREATED)
    results = send(server, 3)
    assert [(r.outcome, r.status) for r in results] == [(PushOutcome.SENT, 201)] * 3
    assert server.connections == 1


def test_chunked_error_body_becomes_the_failure_reason(send):
    body = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nbad \r\n5\r\nthing\r\n0\r\n\r\n"
    server = ScriptedServer(lambda n: body if n == 0 else CREATED)
    first, second = send(server, 2)
    assert (first.outcome, first.reason) == (PushOutcome.FAILED, "400 Bad Request: bad thing")
    assert second.outcome is PushOutcome.SENT and server.connections == 1


def test_close_delimited_body_ends_at_eof_and_the_connection_is_not_reused(send):
    server = ScriptedServer(lambda n: b"HTTP/1.1 410 Gone\r\n\r\nsubscription gone", close_after=lambda n: True)
    results = send(server, 2)
    assert [(r.outcome, r.status) for r in results] == [(PushOutcome.EXPIRED, 410)] * 2
    assert server.connections == 2


def test_interim_responses_are_skipped(send):
    server = ScriptedServer(lambda n: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                            + CREATED)
    [result] = send(server)
    assert (result.outcome, result.status) == (PushOutcome.SENT, 201)


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 201 Created\r\nContent-Length: 0\r\n\r\n",
])
def test_connection_close_and_http_1_0_open_a_new_connection_next_time(send, answer):
    server = ScriptedServer(lambda n: answer)
    results = send(server, 2)
    assert [r.outcome for r in results] == [PushOutcome.SENT] * 2
    assert server.connections == 2


def test_retry_after_and_repeated_headers_are_read_case_insensitively(send):
    server = ScriptedServer(lambda n: b"HTTP/1.1 429 Too Many Requests\r\nretry-AFTER: 120\r\nX-A: 1\r\nX-A: 2\r\n"
                                      b"Content-Length: 4\r\n\r\nslow")
    [result] = send(server)
    assert (result.outcome, result.retry_after, result.reason) == (PushOutcome.RETRY, 120.0, "429 Too Many Requests")


@pytest.mark.parametrize(("answer", "words"), [
    (b"SMTP ready\r\n\r\n", "BadResponse"),
    (b"HTTP/2.0 201 Created\r\nContent-Length: 0\r\n\r\n", "not an HTTP/1.x response"),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", "101"),
    (b"HTTP/1.1 201 Created\r\nContent-Length: nope\r\n\r\n", "BadResponse"),
    (b"HTTP/1.1 201 Created\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n", "headers too large"),
])
def test_an_answer_that_is_not_http_1_is_a_connection_error_worth_a_retry(send, answer, words):
    server = ScriptedServer(lambda n: answer, close_after=lambda n: True)
    [result] = send(server)
    assert result.outcome is PushOutcome.RETRY and result.status is None
    assert result.reason.startswith("connection error:") and words in result.reason


def test_bytes_beyond_the_response_keep_the_answer_but_retire_the_connection(send):
    server = ScriptedServer(lambda n: CREATED + CREATED if n == 0 else CREATED)
    results = send(server, 2)
    assert [r.outcome for r in results] == [PushOutcome.SENT] * 2
    assert server.connections == 2


def test_a_keep_alive_connection_closed_before_answering_is_resent_once_elsewhere(send):
    # The second request finds its reused connection closed without a byte: it goes out again on
    # a new connection. The third request's connection closes the same way: resent once as well.
    server = ScriptedServer(lambda n: None if n in (1, 3) else CREATED)
    results = send(server, 3)
    assert [r.outcome for r in results] == [PushOutcome.SENT] * 3
    assert server.requests == 5 and server.connections == 3


def test_a_connection_closed_mid_response_is_not_resent(send):
    server = ScriptedServer(lambda n: b"HTTP/1.1 201 Created\r\nContent-Length: 10\r\n\r\nabc",
                            close_after=lambda n: True)
    [result] = send(server)
    assert result.outcome is PushOutcome.RETRY and "connection closed mid-response" in result.reason
    assert server.requests == 1
