"""Webhook subscriptions and each tenant's signing secret, in the tenants table.

Keys: ``(TENANT#<tenant>, WEBHOOK#<id>)`` for a subscription, ``(TENANT#<tenant>, SECRET)`` for
the secret that signs the deliveries of jobs' own ``webhook_url``.
"""

from __future__ import annotations

import secrets

from pydantic import BaseModel

from chalicelib.contract import EventType
from chalicelib.tenant_table import TenantTable, tenant_partition

_SECRET = "SECRET"


def new_secret() -> str:
    """A webhook signing secret."""
    return "whsec_" + secrets.token_urlsafe(32)


class Subscription(BaseModel):
    """A URL subscribed to some event types, with the secret its deliveries are signed with."""

    id: str
    url: str
    events: list[EventType]
    secret: str
    created_at: str


def _sort_key(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


class WebhookStore:
    """Subscriptions and signing secrets, always under their tenant's partition."""

    def __init__(self, table: TenantTable) -> None:
        self._table = table

    def add(self, owner: str, subscription: Subscription) -> None:
        """Record a subscription."""
        self._table.put(
            tenant_partition(owner), _sort_key(subscription.id), subscription.model_dump()
        )

    def subscriptions(self, owner: str) -> list[Subscription]:
        """The owner's subscriptions."""
        records = self._table.query(tenant_partition(owner), _sort_key(""))
        return [Subscription.model_validate(r) for r in records]

    def get(self, owner: str, webhook_id: str) -> Subscription | None:
        """One of the owner's subscriptions, or None."""
        found = self._table.get(tenant_partition(owner), _sort_key(webhook_id))
        return None if found is None else Subscription.model_validate(found)

    def remove(self, owner: str, webhook_id: str) -> bool:
        """Remove one of the owner's subscriptions; False if it had none of that id."""
        return self._table.delete(tenant_partition(owner), _sort_key(webhook_id))

    def signing_secret(self, tenant: str) -> str:
        """The tenant's signing secret, made on first use (the first writer wins)."""
        pk = tenant_partition(tenant)
        found = self._table.get(pk, _SECRET) or self._table.put_new_or_get(
            pk, _SECRET, {"secret": new_secret()}
        )
        return str(found["secret"])
