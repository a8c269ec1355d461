"""Webhook deliveries over HTTP: signed bodies, sent to the vetted address, never redirected."""

from __future__ import annotations

import contextlib
import hmac
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
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
    retry_after_s: float | None = None  # the receiver's Retry-After, in seconds from now

    @property
    def ok(self) -> bool:
        """2xx: delivered."""
        return self.status is not None and 200 <= self.status < 300


class Sender(Protocol):
    """Posts a signed body to a webhook URL."""

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        """One attempt."""
        ...


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """A ``Retry-After`` header in seconds from now: delay-seconds or an HTTP date (RFC 9110);
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


class _Deadline:
    """Ends an attempt at a fixed time whatever the receiver does. A socket timeout bounds each
    read only (a receiver trickling a byte every 2 s held an attempt 40 s); at the deadline this
    shuts the connection's socket down, which wakes any read or handshake blocked on it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends = time.monotonic() + seconds
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        """Seconds left (never below a millisecond, so a timeout stays a timeout)."""
        return max(0.001, self._ends - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        """The socket to shut down at the deadline."""
        with self._lock:
            self._sock = sock
            if self.expired:
                self._shut(sock)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            if self._sock is not None:
                self._shut(self._sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        # The plain socket's shutdown, also under TLS (the fd, not the TLS session); closed
        # already is fine.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a vetted address, with the certificate checked against the host name."""

    def __init__(self, target: Target, address: str, deadline: _Deadline) -> None:
        super().__init__(target.host, target.port, timeout=deadline.seconds)
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self._deadline.remaining())
        self._deadline.watch(sock)
        tls = ssl.create_default_context().wrap_socket(
            sock, server_hostname=self.host, do_handshake_on_connect=False
        )
        self._deadline.watch(tls)
        self.sock = tls
        tls.do_handshake()


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to a vetted address (allow-listed hosts only)."""

    def __init__(self, target: Target, address: str, deadline: _Deadline) -> None:
        super().__init__(target.host, target.port, timeout=deadline.seconds)
        self._address = address
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self._deadline.remaining())
        self._deadline.watch(self.sock)


class HttpSender:
    """Delivers over HTTP(S): vets the URL again, connects to the vetted address, never
    follows a redirect (a 3xx is a failed attempt), and gives each attempt ``timeout_s`` in
    all: connecting, sending and the whole answer."""

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
        with _Deadline(self._timeout) as deadline:
            conn = kind(target, target.addresses[0], deadline)
            try:
                conn.request(
                    "POST",
                    target.path,
                    body=body,
                    headers={
                        "Content-Type": "application/json",
                        "User-Agent": "imgcls-webhooks/1",
                    }
                    | headers,
                )
                response = conn.getresponse()
                response.read(64 * 1024)
                if deadline.expired:  # an answer cut short at the deadline is no answer
                    raise TimeoutError("deadline")
                return DeliveryResult(
                    response.status,
                    None if response.status < 300 else "refused",
                    retry_after_s(response.getheader("Retry-After")),
                )
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if deadline.expired:
                    return DeliveryResult(None, f"no complete answer within {self._timeout:g} s")
                return DeliveryResult(None, f"{type(exc).__name__}: {exc}"[:300])
            finally:
                conn.close()
