"""aes128gcm encryption, key validation and VAPID signing (statuspage.push.crypto)."""
from __future__ import annotations

import json
import os
import time

import http_ece
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from statuspage.push.crypto import (
    MAX_PLAINTEXT,
    VapidSigner,
    b64url_decode,
    b64url_encode,
    decrypt_aes128gcm,
    encrypt_aes128gcm,
    endpoint_origin,
    generate_vapid_keypair,
    load_private_key,
    public_key_b64,
    validate_auth,
    validate_p256dh,
    verify_vapid_header,
)


def _ua_keys() -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return key, raw, os.urandom(16)


# ----------------------------------------------------------------------------- base64url

def test_b64url_roundtrip_and_padding_tolerance() -> None:
    for n in range(20):
        data = os.urandom(n)
        enc = b64url_encode(data)
        assert "=" not in enc and "+" not in enc and "/" not in enc
        assert b64url_decode(enc) == data
        assert b64url_decode(enc + "=" * (-len(enc) % 4)) == data


@pytest.mark.parametrize("junk", ["a", "abc$", "not base64!", "ab cd\x00", "é"])
def test_b64url_decode_rejects_junk(junk: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(junk)


# ----------------------------------------------------------------------------- encryption

def test_encrypt_decrypts_with_http_ece_reference() -> None:
    key, pub, auth = _ua_keys()
    plaintext = json.dumps({"title": "Outage", "body": "Ünïcode ✓"}).encode()
    body = encrypt_aes128gcm(plaintext, pub, auth)
    assert http_ece.decrypt(body, version="aes128gcm", private_key=key, auth_secret=auth) == plaintext
    assert decrypt_aes128gcm(body, key, auth) == plaintext
    # Header: 16-byte salt, rs = 4096, idlen 65, then the sender's ephemeral public key.
    assert int.from_bytes(body[16:20], "big") == 4096
    assert body[20] == 65 and body[21] == 0x04


def test_encrypt_is_fresh_per_message_and_deterministic_with_fixed_inputs() -> None:
    key, pub, auth = _ua_keys()
    a = encrypt_aes128gcm(b"x", pub, auth)
    b = encrypt_aes128gcm(b"x", pub, auth)
    assert a[:16] != b[:16] and a[21:86] != b[21:86]  # new salt and ephemeral key each time
    sender = ec.generate_private_key(ec.SECP256R1())
    salt = os.urandom(16)
    c = encrypt_aes128gcm(b"x", pub, auth, salt=salt, sender_private_key=sender)
    assert c == encrypt_aes128gcm(b"x", pub, auth, salt=salt, sender_private_key=sender)
    assert decrypt_aes128gcm(c, key, auth) == b"x"


def test_reference_http_ece_encryption_decrypts_with_ours() -> None:
    key, pub, auth = _ua_keys()
    sender = ec.generate_private_key(ec.SECP256R1())
    body = http_ece.encrypt(b"from http_ece", private_key=sender, dh=pub, auth_secret=auth,
                            version="aes128gcm")
    assert decrypt_aes128gcm(body, key, auth) == b"from http_ece"


def test_size_limit() -> None:
    key, pub, auth = _ua_keys()
    assert MAX_PLAINTEXT == 3993
    body = encrypt_aes128gcm(b"a" * MAX_PLAINTEXT, pub, auth)
    assert len(body) == 4096
    assert http_ece.decrypt(body, version="aes128gcm", private_key=key,
                            auth_secret=auth) == b"a" * MAX_PLAINTEXT
    with pytest.raises(ValueError, match="3993"):
        encrypt_aes128gcm(b"a" * (MAX_PLAINTEXT + 1), pub, auth)
    assert len(encrypt_aes128gcm(b"", pub, auth)) == 103


def test_decrypt_failures_raise_value_error() -> None:
    key, pub, auth = _ua_keys()
    body = bytearray(encrypt_aes128gcm(b"secret", pub, auth))
    with pytest.raises(ValueError):
        decrypt_aes128gcm(bytes(body), key, os.urandom(16))  # wrong auth
    body[-1] ^= 1
    with pytest.raises(ValueError):
        decrypt_aes128gcm(bytes(body), key, auth)  # tampered tag
    with pytest.raises(ValueError):
        decrypt_aes128gcm(b"short", key, auth)


# ----------------------------------------------------------------------------- validation

def test_validate_p256dh_accepts_real_point() -> None:
    _, pub, _ = _ua_keys()
    assert validate_p256dh(b64url_encode(pub)) == pub


@pytest.mark.parametrize("value,message", [
    ("!!!", "base64url"),
    (b64url_encode(b"\x04" + b"\x01" * 64), "curve"),  # right shape, off the curve
    (b64url_encode(b"\x04" + b"\x00" * 64), "curve"),
    (b64url_encode(os.urandom(33)), "65 bytes"),  # compressed-size
    (b64url_encode(b"\x05" + os.urandom(64)), "uncompressed"),
    ("", "65 bytes"),
])
def test_validate_p256dh_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_p256dh(value)


def test_validate_auth() -> None:
    secret = os.urandom(16)
    assert validate_auth(b64url_encode(secret)) == secret
    for bad in (b64url_encode(os.urandom(15)), b64url_encode(os.urandom(17)), "***"):
        with pytest.raises(ValueError):
            validate_auth(bad)


# ----------------------------------------------------------------------------- VAPID

def test_vapid_keypair_formats() -> None:
    priv, pub = generate_vapid_keypair()
    assert len(b64url_decode(priv)) == 32 and len(b64url_decode(pub)) == 65
    assert public_key_b64(load_private_key(priv)) == pub
    with pytest.raises(ValueError):
        load_private_key(b64url_encode(b"\x00" * 32))  # zero is not a valid scalar
    with pytest.raises(ValueError):
        load_private_key(b64url_encode(b"\x01" * 31))


def test_endpoint_origin() -> None:
    assert endpoint_origin("https://fcm.googleapis.com/fcm/send/x") == "https://fcm.googleapis.com"
    assert endpoint_origin("https://Push.Example:443/a") == "https://push.example"
    assert endpoint_origin("http://127.0.0.1:8099/push/t") == "http://127.0.0.1:8099"
    assert endpoint_origin("https://h:8443/") == "https://h:8443"


def test_vapid_header_verifies_with_raw_signature() -> None:
    priv, pub = generate_vapid_keypair()
    signer = VapidSigner(priv, "mailto:ops@example.com")
    assert signer.public_key == pub
    now = time.time()
    header = signer.header_for("https://updates.push.services.mozilla.com/wpush/v2/abc", now)
    assert header.startswith("vapid t=") and header.endswith(f",k={pub}")
    jwt = header[len("vapid t="):].split(",")[0]
    assert len(b64url_decode(jwt.split(".")[2])) == 64  # raw r||s, not DER
    claims = verify_vapid_header(header, pub, "https://updates.push.services.mozilla.com", now)
    assert claims["sub"] == "mailto:ops@example.com"
    assert now < claims["exp"] <= now + 24 * 3600


def test_vapid_verify_rejections() -> None:
    priv, pub = generate_vapid_keypair()
    _, other_pub = generate_vapid_keypair()
    signer = VapidSigner(priv, "mailto:ops@example.com")
    aud = "https://fcm.googleapis.com"
    now = time.time()
    header = signer.header_for(aud + "/fcm/send/1", now)
    with pytest.raises(ValueError, match="key mismatch"):
        verify_vapid_header(header, other_pub, aud, now)
    with pytest.raises(ValueError, match="aud mismatch"):
        verify_vapid_header(header, pub, "https://other.example", now)
    with pytest.raises(ValueError, match="past"):
        verify_vapid_header(header, pub, aud, now + 13 * 3600)
    with pytest.raises(ValueError, match="24 hours"):
        verify_vapid_header(header, pub, aud, now - 13 * 3600)
    with pytest.raises(ValueError, match="format"):
        verify_vapid_header("Bearer abc", pub, aud, now)
    with pytest.raises(ValueError, match="format"):
        verify_vapid_header("vapid t=abc", pub, aud, now)
    # Swap in a different key's signature: k matches, signature does not.
    other_signer = VapidSigner(generate_vapid_keypair()[0], "mailto:x@example.com")
    forged_t = other_signer.header_for(aud, now).split(",")[0]
    with pytest.raises(ValueError, match="bad signature"):
        verify_vapid_header(f"{forged_t},k={pub}", pub, aud, now)
    with pytest.raises(ValueError, match="missing"):
        verify_vapid_header("", pub, aud, now)


def test_vapid_header_cached_per_origin_and_renewed_near_expiry() -> None:
    priv, _ = generate_vapid_keypair()
    signer = VapidSigner(priv, "mailto:ops@example.com", lifetime=12 * 3600)
    t0 = 1_800_000_000.0
    a = signer.header_for("https://fcm.googleapis.com/fcm/send/1", t0)
    b = signer.header_for("https://fcm.googleapis.com/fcm/send/2", t0 + 60)
    assert a is b  # the very same cached string: no re-signing on the hot path
    c = signer.header_for("https://updates.push.services.mozilla.com/wpush/v2/x", t0)
    assert c != a
    # Still reused until within an hour of expiry...
    assert signer.header_for("https://fcm.googleapis.com/x", t0 + 10.9 * 3600) is a
    # ...then renewed, with a later exp.
    d = signer.header_for("https://fcm.googleapis.com/x", t0 + 11.1 * 3600)
    assert d != a
    claims = verify_vapid_header(d, signer.public_key, "https://fcm.googleapis.com",
                                 t0 + 11.1 * 3600)
    assert claims["exp"] == int(t0 + 11.1 * 3600) + 12 * 3600


def test_vapid_signer_limits() -> None:
    priv, _ = generate_vapid_keypair()
    with pytest.raises(ValueError):
        VapidSigner(priv, "mailto:a@b.c", lifetime=24 * 3600 + 1)
    with pytest.raises(ValueError):
        VapidSigner(priv, "ops@example.com")  # sub must be mailto: or https:
    signer = VapidSigner(priv, "https://status.example.com", lifetime=24 * 3600)
    now = time.time()
    claims = verify_vapid_header(signer.header_for("https://a.notify.windows.com/w/?t=1", now),
                                 signer.public_key, "https://a.notify.windows.com", now)
    assert claims["exp"] - now <= 24 * 3600
