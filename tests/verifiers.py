"""Webhook signatures checked the way receivers check them: with other people's code.

``standardwebhooks`` is the reference verifier of the Standard Webhooks specification; Stripe's
``WebhookSignature.verify_header`` checks ``X-Signature``. Both raise when a delivery is not
signed with the secret.
"""

from __future__ import annotations

from collections.abc import Mapping

import stripe
from standardwebhooks import Webhook

TOLERANCE_S = 300


def verify_delivery(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Both verifiers accept the delivery for ``secret``, or this raises."""
    lowered = {k.lower(): v for k, v in headers.items()}
    Webhook(secret).verify(body, dict(lowered))
    stripe.WebhookSignature.verify_header(
        body.decode(), lowered["x-signature"], secret, tolerance=TOLERANCE_S
    )


def rejected(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether neither verifier accepts the delivery for ``secret``."""
    lowered = {k.lower(): v for k, v in headers.items()}
    standard = stripe_ok = True
    try:
        Webhook(secret).verify(body, dict(lowered))
    except Exception:
        standard = False
    try:
        stripe.WebhookSignature.verify_header(
            body.decode(), lowered["x-signature"], secret, tolerance=TOLERANCE_S
        )
    except Exception:
        stripe_ok = False
    return not standard and not stripe_ok
