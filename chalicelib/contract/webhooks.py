"""Webhook subscriptions, the account, job events, and liveness."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool

from chalicelib.contract.common import (
    EVENT_TYPES,
    MAX_URL_LENGTH,
    EventType,
    Invalid,
    Request,
    Response,
    Timestamp,
)
from chalicelib.contract.jobs import DeliveryState, Job, Model

DisabledReason = Literal["endpoint_gone", "consecutive_failures", "disabled_by_owner"]


def _all_event_types() -> list[EventType]:
    return ["job.succeeded", "job.failed", "job.canceled"]


class WebhookRequest(Request):
    """``POST /webhooks``."""

    url: Annotated[
        str,
        Field(max_length=MAX_URL_LENGTH),
        Invalid("invalid_webhook_url", f"url must be a URL of at most {MAX_URL_LENGTH} chars"),
    ]
    events: Annotated[
        list[EventType],
        Field(min_length=1),
        Invalid("invalid_events", f"events must be a non-empty list of {', '.join(EVENT_TYPES)}"),
    ] = Field(default_factory=_all_event_types)


class Webhook(Response):
    """A webhook subscription (its secret is shown only when it is created)."""

    id: str
    url: str
    events: list[EventType]
    created_at: Timestamp
    enabled: bool = Field(True, description="a disabled subscription is sent nothing")
    disabled_reason: DisabledReason | None = Field(
        None,
        description="`endpoint_gone` (it answered 410), `consecutive_failures` (that many "
        "events in a row failed for good), `disabled_by_owner`",
    )
    disabled_at: Timestamp | None = None
    failed_events: int = Field(
        0, ge=0, description="events in a row whose delivery failed for good; 0 after a success"
    )


class NewWebhook(Webhook):
    """``201``: the subscription with its signing secret."""

    secret: str


class WebhookList(Response):
    """The caller's subscriptions."""

    webhooks: list[Webhook]


class WebhookUpdate(Request):
    """``PATCH /webhooks/{webhook_id}``."""

    enabled: Annotated[
        StrictBool,
        Field(description="true re-enables (and forgets past failures); false disables"),
        Invalid("invalid_enabled", "enabled (true or false) is required"),
    ]


class DeliveryAttempt(Response):
    """One HTTP attempt of a delivery."""

    at: Timestamp
    status: int | None = Field(None, description="the receiver's HTTP status, if it answered")
    error: str | None = None
    duration_ms: float = Field(ge=0)


class WebhookDelivery(Response):
    """One event's delivery to a subscription, with every attempt made (redeliveries too)."""

    id: str = Field(description="the delivery's id (for redelivery)")
    webhook_id: str
    event_id: str
    event_type: EventType
    event_created_at: Timestamp
    message_id: str = Field(description="the `webhook-id` header: the same on every attempt")
    state: DeliveryState
    attempts: list[DeliveryAttempt]
    next_attempt_at: Timestamp | None = None
    updated_at: Timestamp


class DeliveryPage(Response):
    """A page of a subscription's deliveries, newest event first."""

    deliveries: list[WebhookDelivery]
    next_token: str | None = None


class Account(Response):
    """The caller's tenant and the secret its per-job webhooks are signed with."""

    tenant: str
    webhook_signing_secret: str


class JobEvent(Response):
    """The body of an SNS job event and of every webhook delivery. ``job`` is the job as
    ``GET /jobs/{job_id}`` shows it, without ``image_url`` and ``webhooks``."""

    id: str = Field(description="the same on every delivery of this event")
    type: EventType
    created_at: Timestamp
    job: Job


class Health(Response):
    """Liveness."""

    status: Literal["ok"] = "ok"
    model: Model


class Readiness(Response):
    """Whether the service can work now: each dependency checked (and the answer kept a few
    seconds)."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, str] = Field(description="per dependency: `ok`, or why it is not")
