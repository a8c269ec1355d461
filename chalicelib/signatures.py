"""How webhook bodies are signed: Standard Webhooks v1, and the Stripe-style ``X-Signature``.

Every delivery carries both, so a receiver can check it with a stock verifier:

- Standard Webhooks (standardwebhooks.com): ``webhook-id`` (the same on every retry of one event
  to one endpoint), ``webhook-timestamp`` and ``webhook-signature: v1,<base64 HMAC-SHA256 of
  "{id}.{timestamp}.{body}">`` keyed with the secret's bytes (``whsec_<base64>``);
- ``X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "{t}.{body}">`` keyed with the secret as written,
  which Stripe's ``WebhookSignature.verify_header`` accepts.

While a subscription's secret is being rotated both secrets sign: space-separated signatures in
``webhook-signature``, one ``v1=`` per secret in ``X-Signature``, as both schemes allow.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "X-Signature"


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64, as Standard Webhooks has it."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: its base64 part decoded (secrets made before this
    format were URL-safe base64, which decodes too)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    padded = encoded + "=" * (-len(encoded) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_" if "-" in padded or "_" in padded else None)
    except (binascii.Error, ValueError):
        return secret.encode()


def message_id(event_id: str, target: str) -> str:
    """``webhook-id``: one event to one endpoint, the same on every attempt."""
    return "msg_" + hashlib.sha256(f"{event_id}/{target}".encode()).hexdigest()[:32]


def standard_signature(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: ``v1,<base64>``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def stripe_signature(secret: str, *, timestamp: int, body: bytes) -> str:
    """The hex HMAC of ``X-Signature``'s ``v1``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """An ``X-Signature`` value for one secret: ``t=<unix seconds>,v1=<hex>``."""
    return f"t={timestamp},v1={stripe_signature(secret, timestamp=timestamp, body=body)}"


def signature_headers(
    secrets: Sequence[str], *, msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Every signature header of a delivery, signed with each of ``secrets``."""
    stripe = ",".join(f"v1={stripe_signature(s, timestamp=timestamp, body=body)}" for s in secrets)
    standard = " ".join(
        standard_signature(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard,
        SIGNATURE_HEADER: f"t={timestamp},{stripe}",
    }
