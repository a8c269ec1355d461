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
from urllib.parse import urlsplit

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
