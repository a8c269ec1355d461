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

A busy tenant's tokens are taken a few at a time (a *lease*): a container that spent all the
tokens of its last claim within ``LEASE_S`` takes twice as many with its next write, up to a
tenth of the burst (at most ``LEASE_MAX``), and admits that many requests without another
write. A tenant making a request now and then still costs one write a request, counted exactly;
a busy one costs a write per ten requests at the defaults. Tokens a container took and did not
spend within ``LEASE_S`` are lost: a tenant spread over many containers may be refused a little
before its limit (at most a tenth of its burst per container), never admitted past it. When
tokens are scarce (a claim of several refused) the container goes back to one at a time.

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
LEASE_S = 1.0  # how long a container may spend tokens it took ahead of its requests
LEASE_MAX = 10  # tokens one write may take (and never more than a tenth of the burst)
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

    @property
    def lease_max(self) -> int:
        """The most tokens one claim may take: a tenth of the burst, at most ``LEASE_MAX``."""
        return max(1, min(LEASE_MAX, self.burst // 10))

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


@dataclass
class _Lease:
    """Tokens a container took ahead for one tenant."""

    size: int  # how many the claim took
    left: int  # not spent yet
    tat: int  # the bucket's ``tat`` after the claim
    until: float  # monotonic time after which the rest are dropped


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
        self._leases: dict[str, _Lease] = {}  # also the last ``tat`` this container wrote
        self._claim_locks: dict[str, threading.Lock] = {}
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
        with self._claim_lock(tenant):  # concurrent requests spend one claim, not race theirs
            return self._admit(tenant, limit)

    def _claim_lock(self, tenant: str) -> threading.Lock:
        with self._lock:
            return self._claim_locks.setdefault(tenant, threading.Lock())

    def _admit(self, tenant: str, limit: Limit) -> dict[str, str]:
        now = round(self._clock() * _US)
        held = self._spend_leased(tenant)
        if held is not None:
            return self._decision(limit, held[0], now, held=held[1]).headers()
        with self._lock:
            last = self._leases.get(tenant)
            busy = last is not None and last.tat > now
            claim = self._next_claim(tenant, limit)
        stored: int | None = None
        for _ in range(_TRIES):
            if busy:
                written, stored = self._busy(tenant, now, limit, claim)
            else:
                written, stored = self._idle(tenant, now, limit, claim)
            if written is not None:
                self._keep(tenant, written, claim)
                return self._decision(limit, written, now, held=claim - 1).headers()
            if claim > 1:
                claim = 1  # tokens are scarce: one at a time, exactly
                continue
            if stored is not None and stored > now + limit.slack_us:
                break  # over the limit
            busy = stored is not None and stored > now
        with self._lock:
            if (lease := self._leases.get(tenant)) is not None:
                lease.until = 0.0  # the next request claims one token, not more
        retry_us = (stored or now) - limit.slack_us - now
        retry_after = max(1, math.ceil(retry_us / _US))
        headers = self._decision(limit, stored or now, now).headers()
        telemetry.count("rate_limited")
        raise RateLimited(
            f"more than {limit.rps:g} requests a second (bursts of {limit.burst}); "
            f"retry after {retry_after} s",
            headers={**headers, "Retry-After": str(retry_after)},
        )

    def _spend_leased(self, tenant: str) -> tuple[int, int] | None:
        """One token of this container's lease, if it holds one: (the lease's ``tat``, tokens
        left after this one)."""
        with self._lock:
            lease = self._leases.get(tenant)
            if lease is None or lease.left <= 0 or lease.until <= self._monotonic():
                return None
            lease.left -= 1
            return lease.tat, lease.left

    def _next_claim(self, tenant: str, limit: Limit) -> int:
        """How many tokens to take: twice the last claim when all of it was spent in time."""
        lease = self._leases.get(tenant)
        if lease is None or lease.left > 0 or lease.until <= self._monotonic():
            return 1
        return min(limit.lease_max, lease.size * 2)

    def _keep(self, tenant: str, tat: int, claim: int) -> None:
        with self._lock:
            self._leases[tenant] = _Lease(
                size=claim, left=claim - 1, tat=tat, until=self._monotonic() + LEASE_S
            )

    def _busy(
        self, tenant: str, now: int, limit: Limit, claim: int
    ) -> tuple[int | None, int | None]:
        # The claim's last token must be within the limit too.
        latest = now + limit.slack_us - (claim - 1) * limit.interval_us
        return self._update(
            tenant,
            update="SET tat = tat + :step, expires_at = :expires",
            condition="tat > :now AND tat <= :latest",
            values={":now": now, ":latest": latest, ":step": claim * limit.interval_us},
            limit=limit,
            now=now,
        )

    def _idle(
        self, tenant: str, now: int, limit: Limit, claim: int
    ) -> tuple[int | None, int | None]:
        return self._update(
            tenant,
            update="SET tat = :next, expires_at = :expires",
            condition="attribute_not_exists(tat) OR tat <= :now",
            values={":now": now, ":next": now + claim * limit.interval_us},
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
    def _decision(limit: Limit, tat: int, now: int, *, held: int = 0) -> Decision:
        """What is left: the bucket's room after ``tat``, and the ``held`` tokens of a lease."""
        ahead = max(0, tat - now)
        room = max(0, (limit.slack_us + limit.interval_us - ahead) // limit.interval_us)
        remaining = min(limit.burst, int(room) + held)
        return Decision(limit=limit, remaining=remaining, reset_s=math.ceil(ahead / _US))


def rate_limiter(settings: Settings, tenants: TenantTable) -> RateLimiter:
    """The limiter with the configured defaults (``RATE_LIMIT_RPS``, ``RATE_LIMIT_BURST``)."""
    return RateLimiter(
        tenants=tenants, default=Limit(settings.rate_limit_rps, settings.rate_limit_burst)
    )
