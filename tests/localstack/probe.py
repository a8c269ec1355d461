"""Is a LocalStack listening? Asked of its own health endpoint, so no other emulator passes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import requests
from localstack_client.config import parse_localstack_host

# What the service uses: images, job queues, job records, job events.
REQUIRED_SERVICES = ("s3", "sqs", "dynamodb", "sns")
_USABLE = {"available", "running"}


@dataclass(frozen=True)
class Probe:
    """The answer: where LocalStack was looked for, and why it cannot be used if it cannot."""

    url: str
    reason: str = ""

    @property
    def ready(self) -> bool:
        """LocalStack answered with every service the tests need."""
        return not self.reason


def localstack_url(env: Mapping[str, str]) -> str:
    """``LOCALSTACK_HOST`` (``host[:port]``) as localstack-client reads it; else localhost:4566."""
    hostname, port = parse_localstack_host(env.get("LOCALSTACK_HOST") or "localhost:4566")
    scheme = "https" if env.get("USE_SSL", "").lower() in ("1", "true") else "http"
    return f"{scheme}://{hostname}:{port}"


def probe(url: str, *, timeout_s: float = 2.0) -> Probe:
    """Ask ``url``'s ``/_localstack/health``; moto's server and other endpoints do not have it."""
    try:
        resp = requests.get(f"{url}/_localstack/health", timeout=timeout_s)
    except requests.RequestException as exc:
        return Probe(url, f"no LocalStack answers at {url} ({type(exc).__name__})")
    try:
        services = resp.json()["services"] if resp.status_code == 200 else None
    except (ValueError, KeyError, TypeError):
        services = None
    if not isinstance(services, dict):
        return Probe(url, f"{url} answers, but not as LocalStack (/_localstack/health)")
    missing = [name for name in REQUIRED_SERVICES if services.get(name) not in _USABLE]
    if missing:
        return Probe(url, f"LocalStack at {url} does not offer {', '.join(missing)}")
    return Probe(url)
