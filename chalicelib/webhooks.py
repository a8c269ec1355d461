"""Webhooks: vetting targets, signing bodies, and delivering over HTTP without following redirects.

A target is vetted when it is given and again at every delivery: ``https`` only (plain ``http``
only for hosts in ``WEBHOOK_ALLOW_HOSTS``), and every address the host resolves to must be a
public one (no private, loopback, link-local, multicast, reserved or cloud-metadata addresses,
IPv4-mapped IPv6 included), unless the host is allow-listed. The connection then goes to the
vetted address itself, so a DNS answer that changes in between cannot redirect it.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from chalicelib.errors import BadRequest

SIGNATURE_HEADER = "X-Signature"
MAX_URL_LENGTH = 2048
Resolver = Callable[[str, int], list[str]]


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to."""
    infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_link_local)


@dataclass(frozen=True)
class Target:
    """A vetted webhook target: where to connect, and what to call it."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def vet_url(
    url: object, *, allow_hosts: Iterable[str], resolve: Resolver = system_resolver
) -> Target:
    """Accept a webhook URL or raise ``BadRequest`` (``invalid_webhook_url``) saying why."""

    def refuse(why: str) -> BadRequest:
        return BadRequest(f"webhook_url {why}", code="invalid_webhook_url")

    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise refuse(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise refuse("is not a valid URL") from exc
    host = (parts.hostname or "").lower()
    allowed = host in {h.lower() for h in allow_hosts}
    if parts.scheme not in ("https", "http") or not host:
        raise refuse("must be an absolute https:// URL")
    if parts.scheme == "http" and not allowed:
        raise refuse("must use https")
    if parts.username or parts.password:
        raise refuse("must not carry credentials")
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise refuse(f"host {host!r} does not resolve") from exc
    if not addresses:
        raise refuse(f"host {host!r} does not resolve")
    if not allowed and not all(_is_public(a) for a in addresses):
        raise refuse("must not point at a private, loopback, link-local or metadata address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, tuple(addresses))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Signature`` value: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t." + body)>``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: int = 300) -> bool:
    """What a receiver does: recompute the signature and check the timestamp is recent."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    if not fields.get("t", "").isdigit() or "v1" not in fields:
        return False
    timestamp = int(fields["t"])
    if abs(time.time() - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields["v1"])


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
        allow_hosts: Iterable[str],
        timeout_s: float,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._allow = frozenset(allow_hosts)
        self._timeout = timeout_s
        self._resolve = resolve

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> DeliveryResult:
        """One attempt; network errors and refusals become a result, never an exception."""
        try:
            target = vet_url(url, allow_hosts=self._allow, resolve=self._resolve)
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
