"""The state of each job's webhook deliveries, in the tenants table under the job
(``(JOB#<job_id>, DELIVERY#<target>)``): one record per target, for the job's latest event."""

from __future__ import annotations

from pydantic import BaseModel

from chalicelib.contract import DeliveryState, EventType
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
