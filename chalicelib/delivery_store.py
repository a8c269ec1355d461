"""Webhook deliveries in the tenants table, kept two ways:

- under the job, ``(JOB#<job_id>, DELIVERY#<target>)``: one record per target, the state of the
  job's latest event (what ``GET /jobs/{job_id}`` shows);
- under the subscription, ``(WEBHOOK#<tenant>#<webhook_id>, LOG#<delivery_id>)``: one record
  per event delivered, with the event's body and every attempt, newest event first (the
  delivery log, from which a delivery is sent again).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from pydantic import BaseModel

from chalicelib.contract import DeliveryState, EventType
from chalicelib.errors import BadRequest
from chalicelib.tenant_table import TenantTable


class DeliveryRecord(BaseModel):
    """Where a job's event is being delivered, and how it went so far."""

    target: str
    url: str
    event_id: str
    event_type: EventType
    event_created_at: str
    state: DeliveryState
    attempts: int
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: str | None = None
    updated_at: str
    expires_at: int


def _partition(job_id: str) -> str:
    return f"JOB#{job_id}"


def _sort_key(target: str) -> str:
    return f"DELIVERY#{target}"


class DeliveryStore:
    """Delivery records of jobs; a late or repeated write never overwrites newer news."""

    def __init__(self, table: TenantTable) -> None:
        self._table = table

    def for_job(self, job_id: str) -> list[DeliveryRecord]:
        """The job's delivery records, one per target."""
        records = self._table.query(_partition(job_id), _sort_key(""))
        return [DeliveryRecord.model_validate(r) for r in records]

    def record(self, job_id: str, delivery: DeliveryRecord) -> bool:
        """Write the delivery's state unless the stored one is of a newer event, or of a later
        attempt of the same event; False when it was not written."""
        return self._table.put_if(
            _partition(job_id),
            _sort_key(delivery.target),
            delivery.model_dump(),
            condition="#created < :created OR (#event = :event AND #attempts <= :attempts)",
            names={"#created": "event_created_at", "#event": "event_id", "#attempts": "attempts"},
            condition_values={
                ":created": delivery.event_created_at,
                ":event": delivery.event_id,
                ":attempts": delivery.attempts,
            },
        )

    def delete_for_job(self, job_id: str) -> None:
        """Remove every delivery record of the job."""
        targets = [r.target for r in self.for_job(job_id)]
        self._table.delete_many([(_partition(job_id), _sort_key(t)) for t in targets])


MAX_LOGGED_ATTEMPTS = 50  # a record stays far below DynamoDB's 400 KB however often it is resent
_DELIVERY_ID = re.compile(r"^dlv_[0-9]{17}_[0-9a-f]{16}$")


class Attempt(BaseModel):
    """One HTTP attempt: when, what came back, how long it took."""

    at: str
    status: int | None = None
    error: str | None = None
    duration_ms: float


class LoggedDelivery(BaseModel):
    """One event's delivery to one subscription: the body sent, and every attempt."""

    id: str
    webhook_id: str
    event_id: str
    event_type: EventType
    event_created_at: str
    message_id: str
    body: str  # the event exactly as first sent, so a redelivery sends the same bytes
    state: DeliveryState
    attempts: list[Attempt] = []
    next_attempt_at: str | None = None
    updated_at: str
    expires_at: int


def delivery_id(*, event_id: str, event_created_at: str, webhook_id: str) -> str:
    """A delivery's id: the event's time first (so ids sort newest last), then a hash of event
    and subscription, so the same event to the same subscription always has the same id."""
    digits = re.sub(r"[^0-9]", "", event_created_at)[:17].ljust(17, "0")
    digest = hashlib.sha256(f"{event_id}/{webhook_id}".encode()).hexdigest()[:16]
    return f"dlv_{digits}_{digest}"


def _log_partition(tenant: str, webhook_id: str) -> str:
    return f"WEBHOOK#{tenant}#{webhook_id}"


def _log_key(delivery: str) -> str:
    return f"LOG#{delivery}"


def _token(delivery: str) -> str:
    return base64.urlsafe_b64encode(delivery.encode()).decode()


def _after(token: str | None) -> str | None:
    """The sort key a page token continues after; 400 ``invalid_next_token`` for garbage."""
    if token is None:
        return None
    try:
        delivery = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("next_token is not valid", code="invalid_next_token") from exc
    if not _DELIVERY_ID.match(delivery):
        raise BadRequest("next_token is not valid", code="invalid_next_token")
    return _log_key(delivery)


class DeliveryLog:
    """Each subscription's deliveries, read only under the tenant that owns the subscription."""

    def __init__(self, table: TenantTable) -> None:
        self._table = table

    def open(self, tenant: str, delivery: LoggedDelivery) -> bool:
        """Log a delivery about to be queued; False if it was logged already (the event came
        again), so nothing is queued twice."""
        return self._table.put(
            _log_partition(tenant, delivery.webhook_id),
            _log_key(delivery.id),
            delivery.model_dump(),
            only_new=True,
        )

    def get(self, tenant: str, webhook_id: str, delivery: str) -> LoggedDelivery | None:
        """One delivery of the tenant's subscription, or None."""
        if not _DELIVERY_ID.match(delivery):
            return None
        found = self._table.get(_log_partition(tenant, webhook_id), _log_key(delivery))
        return None if found is None else LoggedDelivery.model_validate(found)

    def since(self, tenant: str, webhook_id: str, day: str) -> list[LoggedDelivery]:
        """The subscription's deliveries of events from ``day`` (``YYYY-MM-DD``) on."""
        low = _log_key("dlv_" + day.replace("-", ""))
        return [
            LoggedDelivery.model_validate(item)
            for item in self._table.between(
                _log_partition(tenant, webhook_id), low, _log_key("dlv_~")
            )
        ]

    def page(
        self, tenant: str, webhook_id: str, *, limit: int, token: str | None
    ) -> tuple[list[LoggedDelivery], str | None]:
        """A page of the subscription's deliveries, newest event first, and the next token."""
        items, last = self._table.page(
            _log_partition(tenant, webhook_id), _log_key(""), limit=limit, after=_after(token)
        )
        deliveries = [LoggedDelivery.model_validate(item) for item in items]
        return deliveries, _token(deliveries[-1].id) if last and deliveries else None

    def attempted(
        self,
        tenant: str,
        webhook_id: str,
        delivery: str,
        *,
        attempt: Attempt,
        state: DeliveryState,
        next_attempt_at: str | None,
    ) -> None:
        """Add an attempt and the state it left the delivery in (the oldest attempt goes once
        ``MAX_LOGGED_ATTEMPTS`` are kept)."""
        pk, sk = _log_partition(tenant, webhook_id), _log_key(delivery)
        expression = (
            "SET attempts = list_append(if_not_exists(attempts, :none), :one), #state = :state, "
            "updated_at = :at"
        )
        values: dict[str, object] = {
            ":none": [],
            ":one": [attempt.model_dump()],
            ":state": state,
            ":at": attempt.at,
            ":cap": MAX_LOGGED_ATTEMPTS,
        }
        if next_attempt_at:
            expression += ", next_attempt_at = :next"
            values[":next"] = next_attempt_at
        else:
            expression += " REMOVE next_attempt_at"
        room = "attribute_exists(pk) AND (attribute_not_exists(attempts) OR size(attempts) < :cap)"
        names = {"#state": "state"}
        if self._table.update(pk, sk, expression, names=names, values=values, condition=room):
            return
        # Full (or gone): drop the oldest attempt, then add this one.
        self._table.update(pk, sk, "REMOVE attempts[0]")
        self._table.update(pk, sk, expression, names=names, values=values, condition=room)

    def mark(
        self,
        tenant: str,
        webhook_id: str,
        delivery: str,
        *,
        state: DeliveryState,
        now: str,
        unless: tuple[DeliveryState, ...] = (),
        unless_since: str = "",
    ) -> LoggedDelivery | None:
        """Set the delivery's state, unless it is in one of ``unless`` and was updated after
        ``unless_since`` (a delivery whose run died unseen is not held forever); the delivery as
        it is afterwards, or None when it was refused (or is gone)."""
        names = {"#state": "state"}
        values: dict[str, object] = {":state": state, ":at": now}
        condition = "attribute_exists(pk)"
        if unless:
            values |= {f":not{i}": refused for i, refused in enumerate(unless)}
            values[":since"] = unless_since
            held = " OR ".join(f"#state = :not{i}" for i in range(len(unless)))
            condition += f" AND NOT (({held}) AND updated_at > :since)"
        found = self._table.update(
            _log_partition(tenant, webhook_id),
            _log_key(delivery),
            "SET #state = :state, updated_at = :at REMOVE next_attempt_at",
            names=names,
            values=values,
            condition=condition,
        )
        return None if found is None else LoggedDelivery.model_validate(found)
