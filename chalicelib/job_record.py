"""The job record as stored: the public job, plus whose it is, where its image is, which run.

While a job is unfinished its item carries ``open_owner`` (the owner), which puts it in the jobs
table's sparse index of unfinished jobs (``job_indexes.OPEN_INDEX``).

The job's documents (its predictions, categories, model, timings and options) are stored as one
JSON string each. Nothing reads, filters or updates inside them, and as typed DynamoDB lists and
maps a finished job was about 225 attribute values that every write and read took apart and put
together again, on both sides: one put and one read of such an item cost 3.0-3.6 ms of the
caller's CPU as typed values and 1.9-2.1 ms as strings (the local emulator: 10-14 ms against
4 ms). Items written before hold typed values; they are read all the same.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from chalicelib.contract import Job
from chalicelib.dynamo import from_item, to_item

DOCUMENTS = ("predictions", "categories", "model", "timings_ms", "options")


def utc_now() -> str:
    """ISO-8601 UTC timestamp with milliseconds, sortable as a string."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id() -> str:
    """A random 32-hex-digit id."""
    return uuid.uuid4().hex


def idempotent_job_id(owner: str, key: str) -> str:
    """The job id an ``Idempotency-Key`` maps to, per tenant: the same key makes the same job."""
    return hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()[:32]


def is_job_id(value: str) -> bool:
    """Whether ``value`` has the shape of a job id (anything else cannot exist)."""
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


class JobRecord(Job):
    """A job as stored: the public fields plus whose it is, where its image is, which run."""

    owner: str
    s3_key: str
    generation: int = 0
    idempotency_key: str | None = None
    expires_at: int | None = None  # epoch seconds; DynamoDB's TTL removes the record after it
    pixels: int | None = None  # width × height, counted against the tenant's unfinished pixels
    # True once the notify function sent any event of the job to a webhook target; new records
    # start False. Records made before the mark existed have None: they may have deliveries.
    has_deliveries: bool | None = None

    @property
    def may_have_deliveries(self) -> bool:
        """Whether a webhook delivery may exist for this job (else none was ever made)."""
        return self.has_deliveries is not False

    def view(self) -> Job:
        """The public view: no owner, no storage details."""
        return Job.model_validate(self.model_dump(include=set(Job.model_fields)))

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item; absent and empty fields are left out, and ``open_owner`` is there
        while the job is unfinished (the unfinished jobs' index)."""
        plain = {
            k: v for k, v in self.model_dump(mode="json", exclude_none=True).items() if v != {}
        }
        if not self.status.terminal:
            plain["open_owner"] = self.owner
        for name in DOCUMENTS:
            if name in plain:
                plain[name] = json.dumps(plain[name], separators=(",", ":"))
        return to_item(plain)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobRecord:
        """A record from a DynamoDB item (documents as JSON strings, or, written before they
        were, as typed lists and maps)."""
        plain = from_item(item)
        plain.pop("open_owner", None)
        for name in DOCUMENTS:
            if isinstance(plain.get(name), str):
                plain[name] = json.loads(plain[name])
        return cls.model_validate(plain)
