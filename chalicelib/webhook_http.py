"""Webhook deliveries over HTTP: signed bodies, sent to the vetted address, never redirected."""

from __future__ import annotations

import hmac
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Protocol

from chalicelib.errors import BadRequest
from chalicelib.signatures import SIGNATURE_HEADER as SIGNATURE_HEADER
from chalicelib.signatures import sign as sign
from chalicelib.signatures import stripe_signature
from chalicelib.webhook_targets import Policy, Resolver, Target, system_resolver, vet_url


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    """What a receiver of ``X-Signature`` does: recompute it and check the timestamp is recent
    (the benchmark's receiver; the tests use Stripe's and Standard Webhooks' own verifiers)."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    stamps = [v for k, v in fields if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = stripe_signature(secret, timestamp=timestamp, body=body)
    return any(k == "v1" and hmac.compare_digest(expected, v) for k, v in fields)


@dataclass(frozen=True)
class DeliveryResult:
    """What one attempt got: an HTTP status, or an error and no status."""

    status: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """2xx: delivered."""
        return self.status is not None and 200 <= self.status < 300


class Sender(Protocol):
    """Posts a signed body to a webhook URL."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        """One attempt."""
        ...


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a vetted address, with the certificate checked against the host name."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a vetted address (allow-listed hosts only)."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class HttpSender:
    """Delivers over HTTP(S): vets the URL again, connects to the vetted address, never
    follows a redirect (a 3xx is a failed attempt)."""

    def __init__(
        self,
        *,
        policy: Policy,
        timeout_s: float,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._policy = policy
        self._timeout = timeout_s
        self._resolve = resolve

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        """One attempt; network errors and refusals become a result, never an exception."""
        try:
            target = vet_url(url, policy=self._policy, resolve=self._resolve)
        except BadRequest as exc:
            return DeliveryResult(None, exc.message)
        kind = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
        conn = kind(target, target.addresses[0], self._timeout)
        try:
            conn.request(
                "POST",
                target.path,
                body=body,
                headers={"Content-Type": "application/json", "User-Agent": "imgcls-webhooks/1"}
                | headers,
            )
            response = conn.getresponse()
            response.read(64 * 1024)
            return DeliveryResult(response.status, None if response.status < 300 else "refused")
        except (OSError, http.client.HTTPException) as exc:
            return DeliveryResult(None, f"{type(exc).__name__}: {exc}"[:300])
        finally:
            conn.close()
