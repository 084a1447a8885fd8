"""The Standard Webhooks signature (https://www.standardwebhooks.com), which receivers can
check with the `standardwebhooks` libraries or ten lines of their own:

    signed = f"{webhook_id}.{webhook_timestamp}.{body}"
    webhook-signature: v1,<base64 of HMAC-SHA256(secret bytes, signed)>

A secret is shown to its owner as `whsec_<base64 of 24+ random bytes>`; the HMAC key is the
decoded bytes. Several signatures may be sent space-separated (during a secret rotation the
old and the new); a receiver accepts the message if any matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
# How far a receiver should accept timestamps from its own clock (replay protection).
TOLERANCE_S = 5 * 60


class SignatureError(ValueError):
    """A message whose signature or timestamp does not verify."""


def new_secret() -> str:
    """A fresh secret in its shown form: 'whsec_' + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a 'whsec_...' secret.

    Raises:
        ValueError: not a 'whsec_' secret with a base64 body.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a webhook secret is 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 bytes of key")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value ('v1,<base64>') of one message."""
    signed = f"{message_id}.{int(timestamp)}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secrets_: list[str], message_id: str, body: bytes, timestamp: int | None = None) -> dict[
    str, str
]:  # fmt: skip
    """The three Standard Webhooks headers of one delivery, signed with each secret (the
    current one first; during a rotation the previous one too)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": " ".join(sign(s, message_id, ts, body) for s in secrets_),
    }


def verify(
    secret: str,
    message_id: str,
    timestamp: str,
    signature_header: str,
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """What a receiver does: check the timestamp is recent and one signature matches.

    Raises:
        SignatureError: saying which check failed.
    """
    try:
        ts = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not an integer") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        raise SignatureError("webhook-timestamp is too far from now (a replay?)")
    expected = sign(secret, message_id, ts, body).partition(",")[2]
    for candidate in signature_header.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return
    raise SignatureError("no webhook-signature matches")
