"""Webhook targets: a URL is vetted when it is given and again at every delivery.

``https`` only (plain ``http`` only for hosts in ``WEBHOOK_ALLOW_HOSTS``), and every address the
host resolves to must be a public one (no private, loopback, link-local, multicast, reserved or
cloud-metadata addresses, IPv4-mapped IPv6 included), unless the host is allow-listed. The
connection then goes to the vetted address itself, so a DNS answer that changes in between
cannot redirect it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from chalicelib.contract import MAX_URL_LENGTH
from chalicelib.errors import BadRequest

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


@dataclass(frozen=True)
class Policy:
    """Where webhooks may go: allow-listed ``host`` or ``host:port`` entries may be plain http
    and private; ports of this machine's own services are refused whatever the list says."""

    allow: frozenset[str] = frozenset()
    refuse_local_ports: frozenset[int] = frozenset()

    def allows(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is allow-listed (an entry without a port allows any)."""
        shown = f"[{host}]" if ":" in host else host
        return host in self.allow or f"{shown}:{port}" in self.allow

    def refuses(self, addresses: Iterable[str], port: int) -> bool:
        """Whether the target is one of this machine's own services (the emulator, the API)."""
        if port not in self.refuse_local_ports:
            return False
        return any(_is_local(address) for address in addresses)


def _is_local(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _parse(url: object, refuse: Callable[[str], BadRequest]) -> tuple[SplitResult, int]:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise refuse(f"must be a URL of at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        return parts, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise refuse("is not a valid URL") from exc


def vet_url(url: object, *, policy: Policy, resolve: Resolver = system_resolver) -> Target:
    """Accept a webhook URL or raise ``BadRequest`` (``invalid_webhook_url``) saying why."""

    def refuse(why: str) -> BadRequest:
        return BadRequest(f"webhook_url {why}", code="invalid_webhook_url")

    parts, port = _parse(url, refuse)
    host = (parts.hostname or "").lower()
    allowed = policy.allows(host, port)
    if parts.scheme not in ("https", "http") or not host:
        raise refuse("must be an absolute https:// URL")
    if parts.scheme == "http" and not allowed:
        raise refuse("must use https")
    if parts.username or parts.password:
        raise refuse("must not carry credentials")
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise refuse(f"host {host!r} does not resolve") from exc
    if not addresses:
        raise refuse(f"host {host!r} does not resolve")
    if policy.refuses(addresses, port):
        raise refuse("must not point at this service's own endpoints")
    if not allowed and not all(_is_public(a) for a in addresses):
        raise refuse("must not point at a private, loopback, link-local or metadata address")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, port, path, tuple(addresses))
