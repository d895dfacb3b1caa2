"""Web Push message encryption (RFC 8291 over RFC 8188 aes128gcm) and VAPID (RFC 8292).

Implemented directly on ``cryptography`` rather than through http_ece/py_vapid because this is
the per-message hot path of a fan-out: the stdlib ``hmac`` HKDF and a cached VAPID header keep
the cost per push down to one ECDH key generation + exchange and one AES-GCM call.
http_ece remains the reference the tests check against.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import struct
import threading
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "MAX_PLAINTEXT",
    "RECORD_SIZE",
    "VapidSigner",
    "b64url_decode",
    "b64url_encode",
    "decrypt_aes128gcm",
    "encrypt_aes128gcm",
    "endpoint_origin",
    "generate_vapid_keypair",
    "load_private_key",
    "public_key_b64",
    "validate_auth",
    "validate_p256dh",
    "verify_vapid_header",
]

_CURVE = ec.SECP256R1()
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_ECDH = ec.ECDH()

#: RFC 8188 record size we announce. Push services accept at most 4096 bytes of body.
RECORD_SIZE = 4096
_MAX_BODY = 4096
_SALT_LEN = 16
_KEY_LEN = 65  # uncompressed P-256 point: 0x04 || X || Y
# Body = header (salt 16 + rs 4 + idlen 1 + keyid 65) + plaintext + 0x02 delimiter + 16-byte tag.
_HEADER_LEN = _SALT_LEN + 4 + 1 + _KEY_LEN
_OVERHEAD = _HEADER_LEN + 1 + 16
#: Largest plaintext that still encrypts to a body of at most 4096 bytes (4096 - 103).
MAX_PLAINTEXT = _MAX_BODY - _OVERHEAD
assert MAX_PLAINTEXT == 3993

# Precomputed HKDF info strings (RFC 8291 section 3.4 / RFC 8188 section 2.2); the trailing
# 0x01 is the single HKDF-Expand counter byte, because every output is <= 32 bytes.
_KEY_INFO_PREFIX = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00\x01"
_NONCE_INFO = b"Content-Encoding: nonce\x00\x01"
_RS_BYTES = struct.pack("!I", RECORD_SIZE)

MAX_VAPID_LIFETIME = 24 * 3600  # RFC 8292: exp must be no more than 24 hours ahead
_VAPID_RENEW_MARGIN = 3600


# --------------------------------------------------------------------------- base64url

_B64URL_TRANS = str.maketrans("+/", "-_")
_B64URL_RE = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(b: bytes) -> str:
    """URL-safe base64 without padding (the form Web Push uses everywhere)."""
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    """Decode URL-safe base64, tolerating missing padding and standard-alphabet input.

    Raises ValueError on anything that is not base64 (non-alphabet characters, bad length).
    """
    if isinstance(s, bytes):
        s = s.decode("ascii", "replace")
    if not isinstance(s, str):
        raise TypeError("expected a base64url string")
    s = s.strip().rstrip("=")
    # Some clients send the standard alphabet; both decode to the same bytes.
    if "+" in s or "/" in s:
        s = s.translate(_B64URL_TRANS)
    # Validated with one regex, then decoded without re-validation: this runs twice per push
    # on the send path, where base64.b64decode(validate=True) cost ~3 us per call.
    if len(s) % 4 == 1 or not _B64URL_RE.fullmatch(s):
        raise ValueError("invalid base64url: non-alphabet characters or bad length")
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _b64url_json(obj: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


# --------------------------------------------------------------------------- keys


def _raw_public(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def generate_vapid_keypair() -> tuple[str, str]:
    """Return (private key: b64url raw 32-byte scalar, public key: b64url 65-byte point)."""
    key = ec.generate_private_key(_CURVE)
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    return b64url_encode(scalar), b64url_encode(_raw_public(key.public_key()))


def load_private_key(b64: str) -> ec.EllipticCurvePrivateKey:
    """Load a P-256 private key from its b64url raw 32-byte scalar."""
    raw = b64url_decode(b64)
    if len(raw) != 32:
        raise ValueError(f"VAPID private key must be 32 bytes, got {len(raw)}")
    value = int.from_bytes(raw, "big")
    try:
        return ec.derive_private_key(value, _CURVE)
    except ValueError as exc:
        raise ValueError(f"invalid P-256 private key: {exc}") from None


def public_key_b64(private_key: ec.EllipticCurvePrivateKey) -> str:
    """The b64url 65-byte uncompressed public point for a private key (applicationServerKey)."""
    return b64url_encode(_raw_public(private_key.public_key()))


def _point(raw: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, raw)


# A small cache for validation and decryption (tests, the simulator). Encryption does not use
# it: a fan-out meets each subscriber key once per event, and 8192 cached keys held 16 MB.
_load_point = lru_cache(maxsize=256)(_point)


def validate_p256dh(value: str) -> bytes:
    """Decode a subscription's p256dh key; it must be an uncompressed point on P-256."""
    try:
        raw = b64url_decode(value)
    except ValueError:
        raise ValueError("p256dh is not valid base64url") from None
    if len(raw) != _KEY_LEN:
        raise ValueError(f"p256dh must be 65 bytes (uncompressed P-256 point), got {len(raw)}")
    if raw[0] != 0x04:
        raise ValueError("p256dh must be an uncompressed point (first byte 0x04)")
    try:
        _load_point(raw)
    except ValueError:
        raise ValueError("p256dh is not a point on the P-256 curve") from None
    return raw


def validate_auth(value: str) -> bytes:
    """Decode a subscription's auth secret; it must be exactly 16 bytes."""
    try:
        raw = b64url_decode(value)
    except ValueError:
        raise ValueError("auth is not valid base64url") from None
    if len(raw) != 16:
        raise ValueError(f"auth must be 16 bytes, got {len(raw)}")
    return raw


# --------------------------------------------------------------------------- aes128gcm


# HMAC-SHA256 spelled out (RFC 2104) on hashlib: with keys <= 64 bytes it is two SHA-256 calls,
# about a third cheaper than hmac.digest per call on OpenSSL 3, and the two HKDF-Expand outputs
# share one key's padded blocks. Five HMACs per message; tests check it against http_ece.
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_sha256 = hashlib.sha256


def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    block = key.ljust(64, b"\0")
    return block.translate(_IPAD), block.translate(_OPAD)


def _hmac_with(pads: tuple[bytes, bytes], msg: bytes) -> bytes:
    return _sha256(pads[1] + _sha256(pads[0] + msg).digest()).digest()


def _derive(ecdh_secret: bytes, auth_secret: bytes, ua_public: bytes, as_public: bytes,
            salt: bytes) -> tuple[bytes, bytes]:
    """RFC 8291 section 3.4 then RFC 8188 section 2.2: returns (CEK, NONCE).

    HKDF with one-block outputs is just two HMACs (extract, expand with counter 0x01).
    """
    prk_key = _hmac_with(_hmac_pads(auth_secret), ecdh_secret)
    ikm = _hmac_with(_hmac_pads(prk_key), _KEY_INFO_PREFIX + ua_public + as_public + b"\x01")
    prk_pads = _hmac_pads(_hmac_with(_hmac_pads(salt), ikm))
    return _hmac_with(prk_pads, _CEK_INFO)[:16], _hmac_with(prk_pads, _NONCE_INFO)[:12]


def encrypt_aes128gcm(
    plaintext: bytes,
    ua_public: bytes,
    auth_secret: bytes,
    *,
    salt: bytes | None = None,
    sender_private_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """Encrypt one Web Push message as a single aes128gcm record (rs = 4096).

    ``ua_public`` is the subscription's raw 65-byte p256dh, ``auth_secret`` its 16-byte auth.
    A fresh ephemeral key and salt are generated per message unless given (tests only).
    Raises ValueError when the plaintext is over MAX_PLAINTEXT or the keys are malformed.
    """
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(
            f"plaintext is {len(plaintext)} bytes; at most {MAX_PLAINTEXT} fit in a 4096-byte push"
        )
    if len(auth_secret) != 16:
        raise ValueError("auth secret must be 16 bytes")
    if salt is None:
        salt = os.urandom(_SALT_LEN)
    elif len(salt) != _SALT_LEN:
        raise ValueError("salt must be 16 bytes")
    ua_public = bytes(ua_public)
    ua_key = _point(ua_public)
    if sender_private_key is None:
        sender_private_key = ec.generate_private_key(_CURVE)
    as_public = _raw_public(sender_private_key.public_key())
    secret = sender_private_key.exchange(_ECDH, ua_key)
    cek, nonce = _derive(secret, auth_secret, ua_public, as_public, salt)
    # Single (last) record: plaintext || 0x02, no extra padding. Sequence number 0, so the
    # record nonce is NONCE itself.
    ciphertext = AESGCM(cek).encrypt(nonce, plaintext + b"\x02", None)
    return b"".join((salt, _RS_BYTES, b"\x41", as_public, ciphertext))


def decrypt_aes128gcm(
    body: bytes, ua_private_key: ec.EllipticCurvePrivateKey, auth_secret: bytes
) -> bytes:
    """Decrypt a Web Push aes128gcm body as a user agent would. Raises ValueError on failure.

    Handles multiple records for completeness, though senders here always emit one.
    """
    if len(body) < _SALT_LEN + 5:
        raise ValueError("body too short for an aes128gcm header")
    salt = body[:_SALT_LEN]
    rs = struct.unpack("!I", body[_SALT_LEN:_SALT_LEN + 4])[0]
    idlen = body[_SALT_LEN + 4]
    if idlen != _KEY_LEN:
        raise ValueError(f"keyid must be the 65-byte sender public key, got {idlen} bytes")
    if rs < 18:
        raise ValueError(f"record size {rs} too small")
    start = _SALT_LEN + 5 + idlen
    as_public = bytes(body[_SALT_LEN + 5:start])
    try:
        as_key = _load_point(as_public)
    except ValueError:
        raise ValueError("sender public key is not a valid P-256 point") from None
    secret = ua_private_key.exchange(ec.ECDH(), as_key)
    ua_public = _raw_public(ua_private_key.public_key())
    cek, nonce = _derive(secret, auth_secret, ua_public, as_public, salt)
    aead = AESGCM(cek)
    data = body[start:]
    if not data:
        raise ValueError("no records")
    out = []
    seq = 0
    nonce_int = int.from_bytes(nonce, "big")
    pos = 0
    while pos < len(data):
        record = data[pos:pos + rs]
        pos += rs
        record_nonce = (nonce_int ^ seq).to_bytes(12, "big")
        try:
            plain = aead.decrypt(record_nonce, bytes(record), None)
        except InvalidTag:
            raise ValueError("decryption failed (wrong keys or corrupted body)") from None
        stripped = plain.rstrip(b"\x00")
        if not stripped:
            raise ValueError("record has no padding delimiter")
        delimiter = stripped[-1]
        last = pos >= len(data)
        if delimiter == 2 and not last:
            raise ValueError("last-record delimiter before the end of the body")
        if delimiter not in (1, 2) or (last and delimiter != 2):
            raise ValueError("bad padding delimiter")
        out.append(stripped[:-1])
        seq += 1
    return b"".join(out)


# --------------------------------------------------------------------------- VAPID


def endpoint_origin(url: str) -> str:
    """scheme://host[:port] of a URL, lowercased, with the scheme's default port omitted."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        raise ValueError(f"not an absolute URL: {url!r}")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    if port is None or (scheme, port) in (("https", 443), ("http", 80)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _check_subject(subject: str) -> None:
    # Apple's push service (and RFC 8292) want a contact URI: mailto: or https:.
    if not subject or not subject.startswith(("mailto:", "https:")):
        raise ValueError("VAPID subject must be a mailto: or https: URI")


class VapidSigner:
    """Produces ``Authorization: vapid t=<jwt>,k=<key>`` headers, cached per push-service origin.

    A fan-out sends thousands of pushes to a handful of origins (FCM, Mozilla, Apple...), so one
    ECDSA signature per origin per ~``lifetime`` replaces one per message.
    """

    def __init__(self, private_key_b64: str, subject: str, *, lifetime: int = 12 * 3600) -> None:
        if not 0 < lifetime <= MAX_VAPID_LIFETIME:
            raise ValueError("VAPID lifetime must be between 1 second and 24 hours")
        _check_subject(subject)
        self._key = load_private_key(private_key_b64)
        self.public_key: str = public_key_b64(self._key)
        self.subject = subject
        self.lifetime = lifetime
        # Renew when within an hour of expiry (or half the lifetime when that is shorter), so a
        # header handed out is always valid for a while yet at the push service.
        self._margin = min(_VAPID_RENEW_MARGIN, lifetime / 2)
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def header_for(self, endpoint: str, now: float | None = None) -> str:
        """The Authorization header value for a push to ``endpoint``."""
        return self.header_for_origin(endpoint_origin(endpoint), now)

    def header_for_origin(self, origin: str, now: float | None = None) -> str:
        """The same, for an origin already in ``endpoint_origin`` form (the sender parses each
        push-service origin once, not once per push)."""
        if now is None:
            now = time.time()
        hit = self._cache.get(origin)
        if hit is not None and now < hit[1] - self._margin:
            return hit[0]
        with self._lock:
            hit = self._cache.get(origin)
            if hit is not None and now < hit[1] - self._margin:
                return hit[0]
            exp = int(now) + self.lifetime
            header = f"vapid t={self._sign({'aud': origin, 'exp': exp, 'sub': self.subject})}," \
                     f"k={self.public_key}"
            self._cache[origin] = (header, exp)
            return header

    def _sign(self, claims: dict[str, Any]) -> str:
        signing_input = (_b64url_json({"typ": "JWT", "alg": "ES256"}) + "." + _b64url_json(claims))
        der = self._key.sign(signing_input.encode("ascii"), _ECDSA_SHA256)
        r, s = decode_dss_signature(der)
        # JWS ES256 wants raw r||s (RFC 7518 section 3.4), not the DER cryptography returns.
        return signing_input + "." + b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def _parse_vapid_header(header_value: str) -> tuple[str, str]:
    if not header_value:
        raise ValueError("missing Authorization header")
    scheme, _, params = header_value.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError("bad format: Authorization scheme must be 'vapid'")
    values: dict[str, str] = {}
    for item in params.split(","):
        name, sep, val = item.strip().partition("=")
        if sep:
            values[name.strip().lower()] = val.strip()
    t, k = values.get("t"), values.get("k")
    if not t or not k:
        raise ValueError("bad format: expected 'vapid t=<jwt>,k=<public key>'")
    return t, k


def verify_vapid_header(
    header_value: str,
    expected_public_key_b64: str | None,
    expected_aud: str,
    now: float | None = None,
    *,
    check_signature: bool = True,
) -> dict[str, Any]:
    """Verify a ``vapid t=,k=`` header as a push service does; return the JWT claims.

    Raises ValueError with the reason. ``check_signature=False`` lets a caller that already
    verified this exact header (a cache) skip the ECDSA verify but keep the time/aud checks.
    """
    if now is None:
        now = time.time()
    token, k = _parse_vapid_header(header_value)
    try:
        key_raw = b64url_decode(k)
    except ValueError:
        raise ValueError("bad format: k is not base64url") from None
    if expected_public_key_b64 is not None:
        try:
            expected_raw = b64url_decode(expected_public_key_b64)
        except ValueError:
            raise ValueError("expected public key is not base64url") from None
        if not hmac.compare_digest(key_raw, expected_raw):
            raise ValueError("key mismatch: k is not the subscription's applicationServerKey")
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("bad format: JWT must have three parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except ValueError:
        raise ValueError("bad format: JWT parts are not base64url JSON") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise ValueError("bad format: JWT alg must be ES256")
    if not isinstance(claims, dict):
        raise ValueError("bad format: JWT claims must be an object")
    if check_signature:
        if len(sig) != 64:
            raise ValueError("bad signature: ES256 signature must be 64 bytes (raw r||s)")
        if len(key_raw) != _KEY_LEN:
            raise ValueError("bad format: k must be a 65-byte P-256 point")
        try:
            pub = _load_point(key_raw)
        except ValueError:
            raise ValueError("bad format: k is not a P-256 point") from None
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            pub.verify(der, f"{parts[0]}.{parts[1]}".encode("ascii"), _ECDSA_SHA256)
        except InvalidSignature:
            raise ValueError("bad signature") from None
    if claims.get("aud") != expected_aud:
        raise ValueError(f"aud mismatch: expected {expected_aud!r}, got {claims.get('aud')!r}")
    exp = claims.get("exp")
    if not isinstance(exp, int) or isinstance(exp, bool):
        raise ValueError("exp missing or not an integer")
    if exp <= now:
        raise ValueError("exp is in the past")
    if exp > now + MAX_VAPID_LIFETIME:
        raise ValueError("exp is more than 24 hours ahead")
    if not claims.get("sub"):
        raise ValueError("missing sub")
    return claims


def topic_hash(text: str) -> str:
    """A 32-char URL-safe token derived from arbitrary text (Topic header values)."""
    return b64url_encode(hashlib.sha256(text.encode("utf-8")).digest())[:32]
