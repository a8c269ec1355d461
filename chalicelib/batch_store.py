"""Batch records in the tenants table, under the tenant's partition (``BATCH#<batch_id>``)."""

from __future__ import annotations

from pydantic import BaseModel

from chalicelib.contract import Rejected
from chalicelib.tenant_table import TenantTable, tenant_partition


class BatchRecord(BaseModel):
    """What a batch was: its jobs, in the order of its files, and the files it refused."""

    batch_id: str
    created_at: str
    job_ids: list[str]
    rejected: list[Rejected] = []


def is_batch_id(value: str) -> bool:
    """Whether ``value`` has the shape of a batch id."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


class BatchStore:
    """Put and get a tenant's batches."""

    def __init__(self, table: TenantTable) -> None:
        self._table = table

    def put(self, owner: str, batch: BatchRecord) -> None:
        """Record a batch."""
        self._table.put(
            tenant_partition(owner), f"BATCH#{batch.batch_id}", batch.model_dump(mode="json")
        )

    def get(self, owner: str, batch_id: str) -> BatchRecord | None:
        """The owner's batch, or None (malformed ids, unknown ids, other tenants' batches)."""
        if not is_batch_id(batch_id):
            return None
        found = self._table.get(tenant_partition(owner), f"BATCH#{batch_id}")
        return None if found is None else BatchRecord.model_validate(found)
