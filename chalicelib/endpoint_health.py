"""A subscription's health, from its deliveries' outcomes: a ``410 Gone`` disables it at once,
``WEBHOOK_DISABLE_AFTER`` events in a row that failed for good disable it too, and a delivered
event starts the count again. A disabled subscription is sent nothing until its owner enables
it (``PATCH /webhooks/{webhook_id}``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from chalicelib import telemetry
from chalicelib.contract import DeliveryState, DisabledReason
from chalicelib.job_store import utc_now
from chalicelib.settings import Settings
from chalicelib.webhook_http import DeliveryResult
from chalicelib.webhook_store import Subscription, WebhookStore

log = logging.getLogger(__name__)

GONE = 410


class EndpointHealth:
    """Keeps each subscription's failure count and disables the ones that stopped working."""

    def __init__(
        self,
        *,
        settings: Settings,
        webhooks: WebhookStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._webhooks = webhooks
        self._clock = clock

    def after(
        self, tenant: str, subscription: Subscription, result: DeliveryResult, state: DeliveryState
    ) -> None:
        """Take one attempt's outcome into account (a write only when something changes)."""
        if result.status == GONE:
            self._disable(tenant, subscription.id, "endpoint_gone")
        elif state == "delivered":
            if subscription.failed_events:
                self._webhooks.event_delivered(tenant, subscription.id)
        elif state == "failed":
            counted = self._webhooks.event_failed(tenant, subscription.id)
            limit = self._settings.webhook_disable_after
            if counted is not None and counted.enabled and counted.failed_events >= limit:
                self._disable(tenant, subscription.id, "consecutive_failures")

    def _disable(self, tenant: str, webhook_id: str, reason: DisabledReason) -> None:
        telemetry.count("webhooks_disabled")
        log.warning("webhook subscription disabled", extra={"webhook": webhook_id, "why": reason})
        self._webhooks.disable(tenant, webhook_id, reason=reason, now=utc_now())
