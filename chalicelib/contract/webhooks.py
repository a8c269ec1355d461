"""Webhook subscriptions, the account, job events, and liveness."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chalicelib.contract.common import (
    EVENT_TYPES,
    MAX_URL_LENGTH,
    EventType,
    Invalid,
    Request,
    Response,
    Timestamp,
)
from chalicelib.contract.jobs import Job, Model


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


class NewWebhook(Webhook):
    """``201``: the subscription with its signing secret."""

    secret: str


class WebhookList(Response):
    """The caller's subscriptions."""

    webhooks: list[Webhook]


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
