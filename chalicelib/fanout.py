"""What each job event sets off: a bulk-dropped image's result file written beside it, and one
webhook delivery queued per target (the job's own ``webhook_url``, and each subscription of
the tenant that wants the event's type).

Events arrive from the topic's own SQS queue, raw (the event as the body, the tenant as a
message attribute) or as an SNS envelope. A delivery is queued only if no attempt of this event
to that target was recorded yet, so an event that comes again sends nothing twice.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ValidationError

from chalicelib import telemetry
from chalicelib.contract import JobEvent
from chalicelib.delivery_store import (
    DeliveryLog,
    DeliveryRecord,
    DeliveryStore,
    LoggedDelivery,
    delivery_id,
)
from chalicelib.image_store import ImageStore, results_key
from chalicelib.job_store import utc_now
from chalicelib.queues import Queue
from chalicelib.settings import Settings
from chalicelib.signatures import message_id
from chalicelib.webhook_store import Subscription, WebhookStore

log = logging.getLogger(__name__)

JOB_TARGET = "job"  # the job's own webhook_url; subscriptions are named by their id


class DeliveryMessage(BaseModel):
    """One delivery attempt, as a message on the webhooks queue."""

    event: JobEvent
    tenant: str
    target: str
    url: str
    attempt: int = 1  # of this run: a redelivery starts a run of its own
    attempts_before: int = 0  # made in earlier runs, so counts go on across redeliveries

    @property
    def total_attempts(self) -> int:
        """Attempts made so far, this one included."""
        return self.attempts_before + self.attempt

    @property
    def delivery_id(self) -> str:
        """The id of this delivery in its subscription's log."""
        return delivery_id(
            event_id=self.event.id, event_created_at=self.event.created_at, webhook_id=self.target
        )


def delivery_record(
    message: DeliveryMessage,
    *,
    state: str,
    retention_days: int,
    status: int | None = None,
    error: str | None = None,
    next_attempt_at: str | None = None,
) -> DeliveryRecord:
    """What is kept of a delivery's state beside its job."""
    return DeliveryRecord.model_validate(
        {
            "target": message.target,
            "url": message.url,
            "event_id": message.event.id,
            "event_type": message.event.type,
            "event_created_at": message.event.created_at,
            "state": state,
            "attempts": message.total_attempts if state != "pending" else message.attempts_before,
            "last_status": status,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
            "updated_at": utc_now(),
            "expires_at": int(time.time()) + retention_days * 86400,
        }
    )


def logged_delivery(message: DeliveryMessage, record: DeliveryRecord) -> LoggedDelivery:
    """A new entry of a subscription's delivery log, before any attempt."""
    return LoggedDelivery(
        id=message.delivery_id,
        webhook_id=message.target,
        event_id=message.event.id,
        event_type=message.event.type,
        event_created_at=message.event.created_at,
        message_id=message_id(message.event.id, message.target),
        body=message.event.model_dump_json(),
        state="pending",
        updated_at=record.updated_at,
        expires_at=record.expires_at,
    )


def job_event_of(record: SQSRecord) -> tuple[JobEvent, str] | None:
    """The event and its tenant, from a raw delivery or an SNS envelope; None if neither."""
    try:
        attribute = record.message_attributes["tenant"]
        if attribute is not None and attribute.string_value:
            return JobEvent.model_validate_json(record.body), attribute.string_value
        envelope = record.decoded_nested_sns_event
        tenant = envelope.message_attributes["tenant"].value
        return JobEvent.model_validate_json(envelope.message), tenant
    except (ValidationError, ValueError, KeyError, TypeError):
        return None


def _result_document(event: JobEvent) -> dict[str, object]:
    job = event.job.model_dump(mode="json")
    keep = (
        "job_id",
        "status",
        "predictions",
        "categories",
        "cached_from",
        "model",
        "error",
        "attempts",
        "updated_at",
    )
    return {**{k: job.get(k) for k in keep}, "source": job.get("filename")}


class DeliveryMarks(Protocol):
    """Where a job is marked as having webhook deliveries (``JobRepository``)."""

    def mark_deliveries(self, job_id: str) -> None:
        """Mark the job before its first delivery record is written."""
        ...


class Fanout:
    """Job events → result files and delivery messages; one instance per batch of events, so a
    tenant's subscriptions are read once a batch."""

    def __init__(
        self,
        *,
        settings: Settings,
        images: ImageStore,
        webhooks: WebhookStore,
        deliveries: DeliveryStore,
        log: DeliveryLog,
        queue: Queue,
        marks: DeliveryMarks,
    ) -> None:
        self._settings = settings
        self._marks = marks  # the jobs table: a job with a target is marked before its delivery
        self._images = images
        self._webhooks = webhooks
        self._deliveries = deliveries
        self._log = log
        self._queue = queue
        self._subscriptions: dict[str, list[Subscription]] = {}

    def on_record(self, record: SQSRecord) -> None:
        """One job event; raise to have SQS hand it over again."""
        parsed = job_event_of(record)
        if parsed is None:
            log.error(
                "discarding a message that is not a job event", extra={"body": record.body[:99]}
            )
            return
        event, tenant = parsed
        with telemetry.job_context(event.job.job_id):
            self.on_event(event, tenant=tenant)

    def on_event(self, event: JobEvent, *, tenant: str) -> None:
        """Write a bulk-dropped image's result beside it; queue one delivery per target."""
        job = event.job
        if job.source == "s3" and job.filename:
            self._images.put_json(results_key(tenant, job.filename), _result_document(event))
        targets: list[tuple[str, str]] = []
        if job.webhook_url:
            targets.append((JOB_TARGET, job.webhook_url))
        if tenant not in self._subscriptions:
            self._subscriptions[tenant] = self._webhooks.subscriptions(tenant)
        # A disabled subscription is sent nothing (until its owner enables it again).
        targets += [
            (s.id, s.url)
            for s in self._subscriptions[tenant]
            if event.type in s.events and s.enabled
        ]
        if targets:
            self._marks.mark_deliveries(job.job_id)
        for target, url in targets:
            message = DeliveryMessage(event=event, tenant=tenant, target=target, url=url)
            record = delivery_record(
                message, state="pending", retention_days=self._settings.retention_days
            )
            # Not written: this event was attempted for this target already (it came again, as
            # at-least-once delivery allows), or a newer one was: nothing to send.
            if self._deliveries.record(job.job_id, record):
                if target != JOB_TARGET:  # logged already if it came again: sent all the same
                    self._log.open(tenant, logged_delivery(message, record))
                self._queue.send(message.model_dump_json())


def parse_delivery(body: str) -> DeliveryMessage | None:
    """A delivery message, or None for a body that is not one."""
    try:
        return DeliveryMessage.model_validate_json(body)
    except ValidationError:
        return None
