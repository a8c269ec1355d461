"""``GET /account/usage?days=N``: a tenant's jobs, images, bytes and webhook deliveries per UTC
day, read from the records themselves (no counters to keep in step with every write).

Jobs come from the owner index (one query, paged, of the period's jobs); deliveries from each
subscription's delivery log (one query each; a tenant has at most ``MAX_WEBHOOKS_PER_TENANT``).
Deliveries to a job's own ``webhook_url`` are not logged per subscription and are not counted.
Both reads are eventually consistent: a job made a moment ago may be missing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from chalicelib.contract import DayUsage, DeliveryCounts, JobCounts, Usage, UsageTotals
from chalicelib.delivery_store import DeliveryLog
from chalicelib.job_store import JobRepository
from chalicelib.webhook_store import WebhookStore

_JOB_FIELDS = {
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "canceled",
    "PENDING": "unfinished",
    "PROCESSING": "unfinished",
}
_DELIVERY_FIELDS = {
    "delivered": "delivered",
    "failed": "failed",
    "cancelled": "failed",
    "pending": "pending",
    "retrying": "pending",
}


def _today() -> date:
    return datetime.now(UTC).date()


class UsageReport:
    """Adds up a tenant's records by day."""

    def __init__(
        self,
        *,
        repo: JobRepository,
        webhooks: WebhookStore,
        log_store: DeliveryLog,
        today: Callable[[], date] = _today,
    ) -> None:
        self._repo = repo
        self._webhooks = webhooks
        self._log = log_store
        self._today = today

    def report(self, *, owner: str, days: int) -> Usage:
        """The last ``days`` days, today included, oldest first, with their total."""
        last = self._today()
        dates = [(last - timedelta(days=n)).isoformat() for n in range(days - 1, -1, -1)]
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for job in self._repo.created_since(owner, dates[0]):
            day = counts[str(job["created_at"])[:10]]
            day["submitted"] += 1
            day[_JOB_FIELDS.get(str(job.get("status")), "unfinished")] += 1
            day["bytes"] += int(job.get("size_bytes") or 0)
            day["pixels"] += int(job.get("pixels") or 0)
        for subscription in self._webhooks.subscriptions(owner):
            for delivery in self._log.since(owner, subscription.id, dates[0]):
                day = counts[delivery.event_created_at[:10]]
                day["events"] += 1
                day["d_" + _DELIVERY_FIELDS.get(delivery.state, "pending")] += 1
                day["attempts"] += len(delivery.attempts)
        daily = [DayUsage(date=d, **_totals(counts[d]).model_dump()) for d in dates]
        return Usage(
            tenant=owner, days=days, daily=daily, total=_totals(sum(counts.values(), Counter()))
        )


def _totals(c: Counter[str]) -> UsageTotals:
    return UsageTotals(
        jobs=JobCounts(
            submitted=c["submitted"],
            succeeded=c["succeeded"],
            failed=c["failed"],
            canceled=c["canceled"],
            unfinished=c["unfinished"],
        ),
        images=c["submitted"],
        bytes=c["bytes"],
        pixels=c["pixels"],
        webhook_deliveries=DeliveryCounts(
            events=c["events"],
            delivered=c["d_delivered"],
            failed=c["d_failed"],
            pending=c["d_pending"],
            attempts=c["attempts"],
        ),
    )
