"""Webhook delivery attempts, one per webhooks-queue message.

A failed attempt sends the next one as a new message delayed by an exponential backoff with
jitter, or by the receiver's ``Retry-After`` (SQS ``DelaySeconds``, so no Lambda ever sleeps),
up to ``WEBHOOK_MAX_ATTEMPTS``. Each attempt's outcome is recorded beside the job and, for a
subscription, in its delivery log; a subscription's health follows the outcomes
(``chalicelib.endpoint_health``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import telemetry
from chalicelib.contract import DeliveryState
from chalicelib.delivery_store import Attempt, DeliveryLog, DeliveryStore
from chalicelib.endpoint_health import GONE, EndpointHealth
from chalicelib.fanout import JOB_TARGET, DeliveryMessage, delivery_record, parse_delivery
from chalicelib.job_store import utc_now
from chalicelib.queues import MAX_DELAY_S, Queue
from chalicelib.settings import Settings
from chalicelib.signatures import message_id, signature_headers
from chalicelib.webhook_http import DeliveryResult, Sender
from chalicelib.webhook_store import Subscription, WebhookStore

log = logging.getLogger(__name__)


def backoff_s(attempt: int, *, base_s: int, rng: random.Random) -> int:
    """Delay before attempt ``attempt + 1``: base·2^(attempt-1), capped at 900 s, half jittered."""
    ceiling = min(MAX_DELAY_S, base_s * 2 ** (attempt - 1))
    return int(ceiling / 2 + rng.uniform(0, ceiling / 2))


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Outcome:
    """What an attempt leaves a delivery in, and when the next attempt is due (if any)."""

    state: DeliveryState
    error: str | None = None
    delay_s: int | None = None


class Deliverer:
    """Makes one attempt per message and records how it went."""

    def __init__(
        self,
        *,
        settings: Settings,
        webhooks: WebhookStore,
        deliveries: DeliveryStore,
        queue: Queue,
        sender: Sender,
        delivery_log: DeliveryLog,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._webhooks = webhooks
        self._deliveries = deliveries
        self._log = delivery_log
        self._queue = queue
        self._sender = sender
        self._rng = rng or random.Random()
        self._clock = clock
        self._monotonic = monotonic
        self._health = EndpointHealth(settings=settings, webhooks=webhooks, clock=clock)

    def deliver(self, record: SQSRecord) -> None:
        """One attempt; raises only for our own transient failures (a receiver's failure is
        retried by a new, delayed message)."""
        message = parse_delivery(record.body)
        if message is None:
            log.error("discarding a malformed delivery", extra={"body": record.body[:99]})
            return
        with telemetry.job_context(message.event.job.job_id):
            self._attempt(message)

    def for_batch(self) -> Callable[[SQSRecord], None]:
        """``deliver`` within the batch's time budget (``WEBHOOK_BATCH_BUDGET_SECONDS``): an
        attempt that could end after it is not started; its message goes back to the queue as a
        new one (not as a failed record, whose receive count would walk it to the DLQ)."""
        started = self._monotonic()
        budget = self._settings.webhook_batch_budget_s
        timeout = self._settings.webhook_timeout_s
        attempted = False

        def deliver(record: SQSRecord) -> None:
            nonlocal attempted
            if attempted and self._monotonic() - started + timeout > budget:
                self._queue.send(record.body)
                telemetry.count("webhooks_deferred")
                return
            attempted = True
            self.deliver(record)

        return deliver

    def _record(self, message: DeliveryMessage, state: str, **details: object) -> None:
        record = delivery_record(
            message,
            state=state,
            retention_days=self._settings.retention_days,
            **details,  # type: ignore[arg-type]
        )
        self._deliveries.record(message.event.job.job_id, record)

    def _cancel(self, message: DeliveryMessage, why: str) -> None:
        self._record(message, "cancelled", error=why)
        if message.target != JOB_TARGET:
            self._log.mark(
                message.tenant,
                message.target,
                message.delivery_id,
                state="cancelled",
                now=utc_now(),
            )

    def _attempt(self, message: DeliveryMessage) -> None:
        subscription: Subscription | None = None
        if message.target == JOB_TARGET:
            secrets = [self._webhooks.signing_secret(message.tenant)]
        else:
            subscription = self._webhooks.get(message.tenant, message.target)
            if subscription is None:
                self._record(message, "cancelled", error="subscription deleted")
                return
            if not subscription.enabled:
                self._cancel(message, "subscription disabled")
                return
            secrets = subscription.signing_secrets(now=self._clock())
        body = message.event.model_dump_json().encode()
        headers = {
            **signature_headers(
                secrets,
                msg_id=message_id(message.event.id, message.target),
                timestamp=int(self._clock()),
                body=body,
            ),
            "X-Event-Id": message.event.id,
            "X-Event-Type": message.event.type,
            "X-Delivery-Attempt": str(message.total_attempts),
        }
        at = utc_now()
        started = time.perf_counter()
        result = self._sender.post(message.url, body, headers)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        outcome = self._outcome(message, result, elapsed_ms)
        if outcome.delay_s is not None:
            following = message.model_copy(update={"attempt": message.attempt + 1})
            self._queue.send(following.model_dump_json(), delay_s=outcome.delay_s)
        due = None if outcome.delay_s is None else _iso(self._clock() + outcome.delay_s)
        self._record(
            message,
            outcome.state,
            status=result.status,
            error=outcome.error,
            next_attempt_at=due,
        )
        if subscription is not None:
            self._log.attempted(
                message.tenant,
                message.target,
                message.delivery_id,
                attempt=Attempt(
                    at=at,
                    status=result.status,
                    error=None if result.ok else outcome.error,
                    duration_ms=elapsed_ms,
                ),
                state=outcome.state,
                next_attempt_at=due,
            )
            self._health.after(message.tenant, subscription, result, outcome.state)

    def _outcome(self, message: DeliveryMessage, result: DeliveryResult, ms: float) -> Outcome:
        extra = {"job_id": message.event.job.job_id, "attempt": message.total_attempts}
        telemetry.observe_ms("webhook_latency_ms", ms)
        if result.ok:
            telemetry.count("webhooks_delivered")
            log.info("webhook delivered", extra={**extra, "latency_ms": ms})
            return Outcome("delivered")
        error = result.error or f"HTTP {result.status}"
        telemetry.count("webhooks_failed")
        if result.status == GONE:  # the receiver says the endpoint is gone for good
            log.warning("webhook endpoint gone", extra=extra)
            return Outcome("failed", "410 Gone: the endpoint is gone")
        if message.attempt >= self._settings.webhook_max_attempts:
            log.warning("webhook failed for good", extra={**extra, "error": error})
            return Outcome("failed", error)
        delay = backoff_s(
            message.attempt, base_s=self._settings.webhook_base_delay_s, rng=self._rng
        )
        if result.retry_after_s is not None:  # the receiver knows best, within our ceiling
            delay = min(MAX_DELAY_S, int(result.retry_after_s + 0.999))
        log.info("webhook will be retried", extra={**extra, "error": error, "delay_s": delay})
        return Outcome("retrying", error, delay)
