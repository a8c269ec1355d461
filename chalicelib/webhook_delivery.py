"""Webhook delivery attempts, one per webhooks-queue message.

A failed attempt sends the next one as a new message delayed by an exponential backoff with
jitter (SQS ``DelaySeconds``, so no Lambda ever sleeps), up to ``WEBHOOK_MAX_ATTEMPTS``. Each
attempt's outcome is recorded beside the job and shown with it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import telemetry
from chalicelib.delivery_store import DeliveryStore
from chalicelib.fanout import JOB_TARGET, DeliveryMessage, delivery_record, parse_delivery
from chalicelib.queues import MAX_DELAY_S, Queue
from chalicelib.settings import Settings
from chalicelib.signatures import message_id, signature_headers
from chalicelib.webhook_http import Sender
from chalicelib.webhook_store import WebhookStore

log = logging.getLogger(__name__)


def backoff_s(attempt: int, *, base_s: int, rng: random.Random) -> int:
    """Delay before attempt ``attempt + 1``: base·2^(attempt-1), capped at 900 s, half jittered."""
    ceiling = min(MAX_DELAY_S, base_s * 2 ** (attempt - 1))
    return int(ceiling / 2 + rng.uniform(0, ceiling / 2))


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


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
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._webhooks = webhooks
        self._deliveries = deliveries
        self._queue = queue
        self._sender = sender
        self._rng = rng or random.Random()
        self._clock = clock

    def deliver(self, record: SQSRecord) -> None:
        """One attempt; raises only for our own transient failures (a receiver's failure is
        retried by a new, delayed message)."""
        message = parse_delivery(record.body)
        if message is None:
            log.error("discarding a malformed delivery", extra={"body": record.body[:99]})
            return
        with telemetry.job_context(message.event.job.job_id):
            self._attempt(message)

    def _secrets(self, message: DeliveryMessage) -> list[str]:
        """The secrets this delivery is signed with (two while a rotation is recent); none for
        a subscription that was deleted."""
        if message.target == JOB_TARGET:
            return [self._webhooks.signing_secret(message.tenant)]
        subscription = self._webhooks.get(message.tenant, message.target)
        return [] if subscription is None else subscription.signing_secrets(now=self._clock())

    def _record(self, message: DeliveryMessage, state: str, **details: object) -> None:
        record = delivery_record(
            message,
            state=state,
            retention_days=self._settings.retention_days,
            **details,  # type: ignore[arg-type]
        )
        self._deliveries.record(message.event.job.job_id, record)

    def _attempt(self, message: DeliveryMessage) -> None:
        secrets = self._secrets(message)
        if not secrets:
            self._record(message, "cancelled", error="subscription deleted")
            return
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
            "X-Delivery-Attempt": str(message.attempt),
        }
        started = time.perf_counter()
        result = self._sender.post(message.url, body, headers)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        extra = {"job_id": message.event.job.job_id, "attempt": message.attempt}
        telemetry.observe_ms("webhook_latency_ms", elapsed_ms)
        if result.ok:
            telemetry.count("webhooks_delivered")
            log.info("webhook delivered", extra={**extra, "latency_ms": elapsed_ms})
            self._record(message, "delivered", status=result.status)
            return
        error = result.error or f"HTTP {result.status}"
        telemetry.count("webhooks_failed")
        if message.attempt >= self._settings.webhook_max_attempts:
            log.warning("webhook failed for good", extra={**extra, "error": error})
            self._record(message, "failed", status=result.status, error=error)
            return
        delay = backoff_s(
            message.attempt, base_s=self._settings.webhook_base_delay_s, rng=self._rng
        )
        following = message.model_copy(update={"attempt": message.attempt + 1})
        self._queue.send(following.model_dump_json(), delay_s=delay)
        log.info("webhook will be retried", extra={**extra, "error": error, "delay_s": delay})
        self._record(
            message,
            "retrying",
            status=result.status,
            error=error,
            next_attempt_at=_iso(self._clock() + delay),
        )
