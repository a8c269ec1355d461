"""Per-tenant rate limits: a token bucket kept in DynamoDB, so it holds across containers.

The bucket is stored as GCRA's *theoretical arrival time* (``tat``, microseconds since the
epoch): a tenant allowed ``rps`` requests a second with bursts of ``burst`` may make a request
when ``tat - now`` is at most ``(burst - 1) / rps``, and each request moves ``tat`` on by
``1 / rps``. That makes the whole check one conditional ``UpdateItem`` (1 write unit, no read):

- busy (``now < tat``): ``SET tat = tat + interval`` on condition ``now < tat <= now + slack``;
- idle (``tat <= now`` or no record): ``SET tat = now + interval`` on condition that it is so.

The container remembers each tenant's last ``tat`` to try the likely case first; a refused
condition returns the stored record (``ReturnValuesOnConditionCheckFailure``), which says
whether the other case applies or the tenant is over its limit. A request over the limit costs
one refused conditional write (DynamoDB bills it as a write).

A tenant's own limit (``infra.keys limit``) is a record beside the bucket, cached per container
for ``OVERRIDE_CACHE_S``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib import telemetry
from chalicelib.errors import BadRequest, RateLimited
from chalicelib.settings import Settings
from chalicelib.tenant_table import TenantTable, tenant_partition

BUCKET_SK = "RATE#bucket"
LIMIT_SK = "RATE#limit"
OVERRIDE_CACHE_S = 30.0
POLICY = "tenant"  # the policy's name in the RateLimit headers
_US = 1_000_000
_TRIES = 4  # two cases, each tried at most twice when another container races us


@dataclass(frozen=True)
class Limit:
    """Requests a second, and how many may come at once."""

    rps: float
    burst: int

    def __post_init__(self) -> None:
        if not (0 < self.rps <= 10_000) or not (1 <= self.burst <= 100_000):
            raise BadRequest(
                "a rate limit is 0 < rps <= 10000 and 1 <= burst <= 100000", code="invalid_limit"
            )

    @property
    def interval_us(self) -> int:
        """The time one request's token takes to come back."""
        return max(1, round(_US / self.rps))

    @property
    def slack_us(self) -> int:
        """How far ahead of now ``tat`` may be and a request still go through."""
        return (self.burst - 1) * self.interval_us

    def policy_header(self) -> str:
        """``RateLimit-Policy``: ``burst`` requests per the seconds a full bucket takes to fill."""
        window = max(1, math.ceil(self.burst * self.interval_us / _US))
        return f'"{POLICY}";q={self.burst};w={window}'


@dataclass(frozen=True)
class Decision:
    """What the bucket said: the headers every limited answer carries."""

    limit: Limit
    remaining: int
    reset_s: int  # until the bucket is full again

    def headers(self) -> dict[str, str]:
        """``RateLimit`` and ``RateLimit-Policy`` (draft-ietf-httpapi-ratelimit-headers)."""
        return {
            "RateLimit": f'"{POLICY}";r={self.remaining};t={self.reset_s}',
            "RateLimit-Policy": self.limit.policy_header(),
        }


class LimitStore:
    """A tenant's own limit, kept beside its bucket."""

    def __init__(self, tenants: TenantTable) -> None:
        self._tenants = tenants

    def get(self, tenant: str) -> Limit | None:
        """The tenant's own limit, or None for the defaults."""
        record = self._tenants.get(tenant_partition(tenant), LIMIT_SK)
        return None if record is None else Limit(float(record["rps"]), int(record["burst"]))

    def set(self, tenant: str, limit: Limit) -> None:
        """Give the tenant its own limit."""
        self._tenants.put(
            tenant_partition(tenant), LIMIT_SK, {"rps": str(limit.rps), "burst": limit.burst}
        )

    def clear(self, tenant: str) -> None:
        """Back to the defaults."""
        self._tenants.delete(tenant_partition(tenant), LIMIT_SK)


class RateLimiter:
    """Admits a tenant's request, or refuses it with 429 ``rate_limited``."""

    def __init__(
        self,
        *,
        tenants: TenantTable,
        default: Limit,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tenants = tenants
        self._limits = LimitStore(tenants)
        self._default = default
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_tat: dict[str, int] = {}
        self._overrides: dict[str, tuple[Limit | None, float]] = {}

    def limit_of(self, tenant: str) -> Limit:
        """The tenant's limit: its own if it has one (cached briefly), else the default."""
        now = self._monotonic()
        with self._lock:
            cached = self._overrides.get(tenant)
        if cached is None or cached[1] <= now:
            cached = (self._limits.get(tenant), now + OVERRIDE_CACHE_S)
            with self._lock:
                self._overrides[tenant] = cached
        return cached[0] or self._default

    def admit(self, tenant: str) -> dict[str, str]:
        """The ``RateLimit`` headers of an admitted request; ``RateLimited`` if over."""
        limit = self.limit_of(tenant)
        now = round(self._clock() * _US)
        with self._lock:
            busy = self._last_tat.get(tenant, 0) > now
        stored: int | None = None
        for _ in range(_TRIES):
            tat, stored = self._busy(tenant, now, limit) if busy else self._idle(tenant, now, limit)
            if tat is not None:
                with self._lock:
                    self._last_tat[tenant] = tat
                return self._decision(limit, tat, now).headers()
            if stored is not None and stored > now + limit.slack_us:
                break  # over the limit
            busy = stored is not None and stored > now
        retry_us = (stored or now) - limit.slack_us - now
        retry_after = max(1, math.ceil(retry_us / _US))
        headers = self._decision(limit, stored or now, now).headers()
        telemetry.count("rate_limited")
        raise RateLimited(
            f"more than {limit.rps:g} requests a second (bursts of {limit.burst}); "
            f"retry after {retry_after} s",
            headers={**headers, "Retry-After": str(retry_after)},
        )

    def _busy(self, tenant: str, now: int, limit: Limit) -> tuple[int | None, int | None]:
        return self._update(
            tenant,
            update="SET tat = tat + :step, expires_at = :expires",
            condition="tat > :now AND tat <= :latest",
            values={":now": now, ":latest": now + limit.slack_us, ":step": limit.interval_us},
            limit=limit,
            now=now,
        )

    def _idle(self, tenant: str, now: int, limit: Limit) -> tuple[int | None, int | None]:
        return self._update(
            tenant,
            update="SET tat = :next, expires_at = :expires",
            condition="attribute_not_exists(tat) OR tat <= :now",
            values={":now": now, ":next": now + limit.interval_us},
            limit=limit,
            now=now,
        )

    def _update(
        self,
        tenant: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        limit: Limit,
        now: int,
    ) -> tuple[int | None, int | None]:
        """(the new ``tat``, None) when written; (None, the stored ``tat`` or None) if refused."""
        expires = now // _US + 86_400 + limit.slack_us // _US  # TTL: a day after it is idle
        written = self._tenants.update_if(
            tenant_partition(tenant),
            BUCKET_SK,
            update=update,
            condition=condition,
            values={**values, ":expires": expires},
        )
        if written.done:
            return int(written.values["tat"]), None
        stored = written.values.get("tat")
        return None, None if stored is None else int(stored)

    @staticmethod
    def _decision(limit: Limit, tat: int, now: int) -> Decision:
        ahead = max(0, tat - now)
        remaining = max(0, (limit.slack_us + limit.interval_us - ahead) // limit.interval_us)
        return Decision(limit=limit, remaining=int(remaining), reset_s=math.ceil(ahead / _US))


def rate_limiter(settings: Settings, tenants: TenantTable) -> RateLimiter:
    """The limiter with the configured defaults (``RATE_LIMIT_RPS``, ``RATE_LIMIT_BURST``)."""
    return RateLimiter(
        tenants=tenants, default=Limit(settings.rate_limit_rps, settings.rate_limit_burst)
    )
