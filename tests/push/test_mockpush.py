"""The benchmark's mock push service takes every Authorization form RFC 8292 allows (Node's
web-push sends `vapid t=..., k=...` with a space) and refuses what is not a VAPID header; checked
on the parser and once through the real process over TLS."""
from __future__ import annotations

import http.client
import importlib.util
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from statuspage.push.simulator import PushSimulator
from tests.push.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mockpush", ROOT / "bench" / "mockpush.py")
mockpush = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mockpush)

JWT = b"eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9.eyJhdWQiOiJodHRwczovL3gifQ.c2ln"
KEY = b"BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"


@pytest.mark.parametrize("header", [
    b"vapid t=%s,k=%s" % (JWT, KEY),  # what this project sends
    b"vapid t=%s, k=%s" % (JWT, KEY),  # Node's web-push
    b"vapid k=%s, t=%s" % (KEY, JWT),  # either order
    b"Vapid t=%s ,k=%s" % (JWT, KEY),  # the scheme is case-insensitive; spaces around the comma
    b"VAPID t = %s , k = %s" % (JWT, KEY),  # spaces around "="
    b'vapid t="%s", k="%s"' % (JWT, KEY),  # quoted-string values
    b"vapid  t=%s,\tk=%s" % (JWT, KEY),
])
def test_every_valid_vapid_authorization_form_is_accepted(header):
    assert mockpush.vapid_params(header) == {b"t": JWT, b"k": KEY}


@pytest.mark.parametrize("header", [
    b"", b"vapid", b"vapid t=%s" % JWT, b"vapid k=%s" % KEY, b"vapid t=,k=%s" % KEY, b"vapid t=%s,k=" % JWT,
    b"WebPush %s" % JWT, b"Bearer %s" % JWT, b"vapidt=%s,k=%s" % (JWT, KEY), b"vapid t=a b,k=%s" % KEY,
    b'vapid t="%s,k=%s' % (JWT, KEY),
])
def test_anything_else_is_refused(header):
    assert mockpush.vapid_params(header) is None


def test_the_running_service_answers_201_to_the_spaced_form(tmp_path):
    # The simulator's TLS certificate (127.0.0.1) serves the mock too.
    with PushSimulator(tls=True) as tls:
        cert, key = tls.cert_path, tls.key_path
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(ROOT / "bench" / "mockpush.py"), "--port", str(port),
                                 "--cert", cert, "--key", key], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            answers = []
            for authorization in (b"vapid t=%s, k=%s" % (JWT, KEY), b"vapid t=%s,k=%s" % (JWT, KEY), b"Bearer x"):
                conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                                   context=ssl.create_default_context(cafile=cert))
                conn.request("POST", "/push/1", body=b"\0" * 200, headers={
                    "TTL": "60", "Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                    "Authorization": authorization.decode()})
                response = conn.getresponse()
                answers.append((response.status, response.read()))
                conn.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert [status for status, _ in answers] == [201, 201, 400]
    assert b"RFC 8292" in answers[2][1]
