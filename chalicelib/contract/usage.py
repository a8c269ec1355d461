"""``GET /account/usage``: what a tenant used, day by day."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from chalicelib.contract.common import Invalid, Request, Response

MAX_USAGE_DAYS = 30  # records are kept RETENTION_DAYS (30) by default


class UsageQuery(Request):
    """``?days=N``: the last N days, today included (UTC)."""

    days: Annotated[
        int,
        Field(ge=1, le=MAX_USAGE_DAYS, description=f"1-{MAX_USAGE_DAYS} (7)"),
        Invalid("invalid_days", f"days must be a whole number from 1 to {MAX_USAGE_DAYS}"),
    ] = 7


class JobCounts(Response):
    """Jobs made that day, by where they stand now."""

    submitted: int = Field(0, ge=0, description="every job made: one per image")
    succeeded: int = Field(0, ge=0)
    failed: int = Field(0, ge=0)
    canceled: int = Field(0, ge=0)
    unfinished: int = Field(0, ge=0, description="PENDING or PROCESSING")


class DeliveryCounts(Response):
    """Job events sent to the tenant's subscriptions that day (one per event and
    subscription, however many attempts it took), by where they stand now."""

    events: int = Field(0, ge=0)
    delivered: int = Field(0, ge=0)
    failed: int = Field(0, ge=0, description="given up, or canceled with the subscription")
    pending: int = Field(0, ge=0, description="queued or retrying")
    attempts: int = Field(0, ge=0, description="HTTP requests made")


class UsageTotals(Response):
    """What was used over a period."""

    jobs: JobCounts = Field(default_factory=JobCounts)
    images: int = Field(0, ge=0, description="images received (each job has one)")
    bytes: int = Field(0, ge=0, description="their size")
    pixels: int = Field(0, ge=0, description="their width × height")
    webhook_deliveries: DeliveryCounts = Field(default_factory=DeliveryCounts)


class DayUsage(UsageTotals):
    """One UTC day."""

    date: str = Field(description="YYYY-MM-DD (UTC)")


class Usage(Response):
    """The tenant's usage over the last ``days`` days, oldest first, and their total."""

    tenant: str
    days: int
    daily: list[DayUsage]
    total: UsageTotals
