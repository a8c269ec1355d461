"""API keys: issued once, stored only as SHA-256 hashes in the tenants table, revocable.

A key looks like ``ik_<key_id>_<secret>``; its ``key_id`` names it in listings and revocation,
the whole key is shown only when it is created. Records: ``(KEY#<sha256>, KEY)`` finds a
presented key's tenant; ``(TENANT#<tenant>, APIKEY#<key_id>)`` lists a tenant's keys.
``API_KEYS`` (``tenant:key,…``) configures keys too: the local runtime seeds them into the
table, and a deployed API function accepts them from its environment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from chalicelib.errors import BadRequest, Forbidden, NotFound, Unauthorized
from chalicelib.job_store import utc_now
from chalicelib.settings import TENANT_NAME
from chalicelib.tenant_table import TenantTable, tenant_partition

API_KEY_HEADER = "x-api-key"
CACHE_SECONDS = 30  # a revoked key stops working within this long in a warm container


def key_hash(key: str) -> str:
    """What is stored of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def _key_pk(key: str) -> str:
    return f"KEY#{key_hash(key)}"


def _listing(tenant: str, key_id: str) -> tuple[str, str]:
    return tenant_partition(tenant), f"APIKEY#{key_id}"


class KeyStore:
    """Create, list, revoke and look up hashed API keys."""

    def __init__(self, tenants: TenantTable) -> None:
        self._tenants = tenants

    def create(self, tenant: str, *, key: str | None = None) -> dict[str, Any]:
        """Issue a key for ``tenant`` (or register the given one); the key is in the answer only."""
        if not TENANT_NAME.match(tenant):
            raise BadRequest(
                "a tenant is 1-64 letters, digits, '.', '_' or '-'", code="invalid_tenant"
            )
        key_id = secrets.token_hex(4)
        key = key or f"ik_{key_id}_{secrets.token_urlsafe(24)}"
        if len(key) < 16:
            raise BadRequest("API keys have at least 16 characters", code="invalid_api_key")
        existing = self._tenants.get(_key_pk(key), "KEY")
        if existing is not None:
            if existing.get("tenant") != tenant:
                raise BadRequest("that key belongs to another tenant", code="invalid_api_key")
            return {**existing, "key": key}
        record = {"key_id": key_id, "tenant": tenant, "created_at": utc_now()}
        # The listing first: a key that authenticates can always be found and revoked.
        listing = _listing(tenant, key_id)
        self._tenants.put(*listing, {**record, "hash": key_hash(key)})
        if not self._tenants.put(_key_pk(key), "KEY", record, only_new=True):
            self._tenants.delete(*listing)  # a concurrent registration of the same key won
            return self.create(tenant, key=key)
        return {**record, "key": key}

    def list(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's keys: ids and creation times, never the keys."""
        return [
            {k: r[k] for k in ("key_id", "tenant", "created_at")}
            for r in self._tenants.query(*_listing(tenant, ""))
        ]

    def revoke(self, tenant: str, key_id: str) -> None:
        """Remove a key; 404 if the tenant has no key of that id."""
        record = self._tenants.get(*_listing(tenant, key_id))
        if record is None:
            raise NotFound(f"tenant {tenant!r} has no key {key_id!r}", code="key_not_found")
        self._tenants.delete(f"KEY#{record['hash']}", "KEY")
        self._tenants.delete(*_listing(tenant, key_id))

    def tenant_of(self, key: str) -> str | None:
        """The tenant a presented key belongs to, or None."""
        record = self._tenants.get(_key_pk(key), "KEY")
        return None if record is None else str(record["tenant"])

    def seed(self, keys: Mapping[str, str]) -> None:
        """Register configured ``{key: tenant}`` pairs (idempotent)."""
        for key, tenant in keys.items():
            self.create(tenant, key=key)


class Authenticator:
    """The one check every non-public route goes through: ``x-api-key`` → tenant.

    Configured keys are compared in constant time; stored keys are found by their hash. Hits
    are cached briefly per container so a busy client costs one read per ``CACHE_SECONDS``.
    """

    def __init__(
        self,
        *,
        keys: KeyStore,
        configured: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._configured = dict(configured)
        self._clock = clock
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The caller's tenant; 401 without a key, 403 with one that is not valid."""
        presented = headers.get(API_KEY_HEADER, "").strip()
        if not presented:
            raise Unauthorized(
                f"send your API key in the {API_KEY_HEADER} header", code="missing_api_key"
            )
        tenant = None
        for key, owner in self._configured.items():
            if hmac.compare_digest(key.encode(), presented.encode()):
                tenant = owner
        tenant = tenant or self._stored(presented)
        if tenant is None:
            raise Forbidden("the API key is not valid", code="invalid_api_key")
        return tenant

    def _stored(self, presented: str) -> str | None:
        digest = key_hash(presented)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        tenant = self._keys.tenant_of(presented)
        if tenant is not None:
            with self._lock:
                self._cache[digest] = (tenant, now + CACHE_SECONDS)
        return tenant
