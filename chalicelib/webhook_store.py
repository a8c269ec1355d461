"""Webhook subscriptions and each tenant's signing secret, in the tenants table.

Keys: ``(TENANT#<tenant>, WEBHOOK#<id>)`` for a subscription, ``(TENANT#<tenant>, HOOKURL#<hash
of the URL>)`` for the claim that makes a URL one subscription's only (a conditional put, so two
requests at once cannot both subscribe it), ``(TENANT#<tenant>, SECRET)`` for the secret that
signs the deliveries of jobs' own ``webhook_url``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import datetime

from pydantic import BaseModel

from chalicelib.contract import DisabledReason, EventType
from chalicelib.signatures import new_secret
from chalicelib.tenant_table import TenantTable, tenant_partition

_SECRET = "SECRET"
ROTATION_OVERLAP_S = 24 * 3600  # how long the previous secret still signs after a rotation


class Subscription(BaseModel):
    """A URL subscribed to some event types, with the secret its deliveries are signed with."""

    id: str
    url: str
    events: list[EventType]
    secret: str
    created_at: str
    previous_secret: str | None = None
    rotated_at: str | None = None
    enabled: bool = True
    disabled_reason: DisabledReason | None = None
    disabled_at: str | None = None
    failed_events: int = 0  # events in a row whose delivery failed for good

    def signing_secrets(self, *, now: float) -> list[str]:
        """The secrets a delivery is signed with: the current one, and for a day after a
        rotation the previous one too, so receivers can switch without missing a delivery."""
        if self.previous_secret and self.rotated_at:
            rotated = datetime.fromisoformat(self.rotated_at).timestamp()
            if now - rotated < ROTATION_OVERLAP_S:
                return [self.secret, self.previous_secret]
        return [self.secret]


_WEBHOOK_ID = re.compile(r"^wh_[0-9a-f]{32}$")


def new_webhook_id() -> str:
    """A subscription's id."""
    return "wh_" + uuid.uuid4().hex


def _sort_key(webhook_id: str) -> str:
    return f"WEBHOOK#{webhook_id}"


def _url_key(url: str) -> str:
    return "HOOKURL#" + hashlib.sha256(url.encode()).hexdigest()[:40]


def _known_shape(webhook_id: str) -> bool:
    """Whether an id can be one of ours: anything else is no subscription, never a request
    DynamoDB refuses (a sort key of over 1 KB) or a prefix that matches others."""
    return bool(_WEBHOOK_ID.match(webhook_id))


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
        if not _known_shape(webhook_id):
            return None
        found = self._table.get(tenant_partition(owner), _sort_key(webhook_id))
        return None if found is None else Subscription.model_validate(found)

    def rotate(self, owner: str, webhook_id: str, *, secret: str, now: str) -> Subscription | None:
        """Sign with ``secret`` from now on, the current secret becoming the previous one (one
        update, so a concurrent rotation or delivery outcome is never overwritten); None if the
        subscription is gone."""
        return self._update(
            owner,
            webhook_id,
            "SET previous_secret = secret, secret = :secret, rotated_at = :now",
            {":secret": secret, ":now": now},
        )

    def enable(self, owner: str, webhook_id: str) -> Subscription | None:
        """Deliver to the subscription again, its past failures forgotten; None if it is gone."""
        return self._update(
            owner,
            webhook_id,
            "SET enabled = :true, failed_events = :zero REMOVE disabled_reason, disabled_at",
            {":true": True, ":zero": 0},
        )

    def disable(
        self, owner: str, webhook_id: str, *, reason: DisabledReason, now: str
    ) -> Subscription | None:
        """Send the subscription nothing more; None if it is gone."""
        return self._update(
            owner,
            webhook_id,
            "SET enabled = :false, disabled_reason = :reason, disabled_at = :now",
            {":false": False, ":reason": reason, ":now": now},
        )

    def event_failed(self, owner: str, webhook_id: str) -> Subscription | None:
        """Count one more event in a row whose delivery failed for good (an atomic ``ADD``, so
        concurrent deliveries each count); the subscription afterwards, or None if gone."""
        return self._update(owner, webhook_id, "ADD failed_events :one", {":one": 1})

    def event_delivered(self, owner: str, webhook_id: str) -> None:
        """A delivery succeeded: the failures in a row start again from 0."""
        self._update(owner, webhook_id, "SET failed_events = :zero", {":zero": 0})

    def _update(
        self, owner: str, webhook_id: str, expression: str, values: dict[str, object]
    ) -> Subscription | None:
        if not _known_shape(webhook_id):
            return None
        found = self._table.update(
            tenant_partition(owner), _sort_key(webhook_id), expression, values=values
        )
        return None if found is None else Subscription.model_validate(found)

    def remove(self, owner: str, webhook_id: str) -> bool:
        """Remove one of the owner's subscriptions, and its claim on its URL; False if it had
        none of that id."""
        if not _known_shape(webhook_id):
            return False
        removed = self._table.take(tenant_partition(owner), _sort_key(webhook_id))
        if removed is None:
            return False
        self._table.delete_if(
            tenant_partition(owner),
            _url_key(str(removed["url"])),
            condition="webhook_id = :id",
            values={":id": webhook_id},
        )
        return True

    def claim_url(self, owner: str, url: str, webhook_id: str) -> str | None:
        """Make ``url`` the subscription ``webhook_id``'s alone: None when it is, else the id of
        the subscription that has it. A claim whose subscription is gone (a creation that died
        half-way) is taken over."""
        pk, sk = tenant_partition(owner), _url_key(url)
        holder = str(self._table.put_new_or_get(pk, sk, {"webhook_id": webhook_id})["webhook_id"])
        if holder == webhook_id:
            return None
        if self.get(owner, holder) is not None:
            return holder
        taken = self._table.put_if(
            pk,
            sk,
            {"webhook_id": webhook_id},
            condition="#holder = :held",
            names={"#holder": "webhook_id"},
            condition_values={":held": holder},
        )
        return None if taken else holder

    def signing_secret(self, tenant: str) -> str:
        """The tenant's signing secret, made on first use (the first writer wins)."""
        pk = tenant_partition(tenant)
        found = self._table.get(pk, _SECRET) or self._table.put_new_or_get(
            pk, _SECRET, {"secret": new_secret()}
        )
        return str(found["secret"])
