"""A subscription's delivery log (``GET /webhooks/{webhook_id}/deliveries``) and redelivery
(``POST …/deliveries/{delivery_id}/redeliver``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from chalicelib.contract import DeliveryPage, JobEvent, PageQuery, WebhookDelivery
from chalicelib.delivery_store import DeliveryLog, LoggedDelivery
from chalicelib.errors import Conflict, NotFound, ServiceUnavailable, TransientError
from chalicelib.fanout import DeliveryMessage
from chalicelib.job_store import utc_now
from chalicelib.queues import MAX_DELAY_S, Queue
from chalicelib.webhook_store import Subscription, WebhookStore

log = logging.getLogger(__name__)


def _shown(delivery: LoggedDelivery) -> WebhookDelivery:
    return WebhookDelivery.model_validate(delivery.model_dump(exclude={"body", "expires_at"}))


class WebhookLog:
    """What a tenant sees of its subscriptions' deliveries, and sending one again."""

    def __init__(self, *, webhooks: WebhookStore, log_store: DeliveryLog, queue: Queue) -> None:
        self._webhooks = webhooks
        self._log = log_store
        self._queue = queue

    def _subscription(self, owner: str, webhook_id: str) -> Subscription:
        subscription = self._webhooks.get(owner, webhook_id)
        if subscription is None:
            raise NotFound(f"no webhook {webhook_id!r}", code="webhook_not_found")
        return subscription

    def page(self, *, owner: str, webhook_id: str, query: PageQuery) -> DeliveryPage:
        """A page of the subscription's deliveries, newest event first."""
        self._subscription(owner, webhook_id)
        deliveries, token = self._log.page(
            owner, webhook_id, limit=query.limit, token=query.next_token
        )
        return DeliveryPage(deliveries=[_shown(d) for d in deliveries], next_token=token)

    def redeliver(self, *, owner: str, webhook_id: str, delivery_id: str) -> WebhookDelivery:
        """Send a logged delivery again: the same body and ``webhook-id``, freshly signed, with
        retries as usual. 409 while it is still being delivered, or if the subscription is
        disabled (enable it first)."""
        subscription = self._subscription(owner, webhook_id)
        logged = self._log.get(owner, webhook_id, delivery_id)
        if logged is None:
            raise NotFound(f"no delivery {delivery_id!r}", code="delivery_not_found")
        if not subscription.enabled:
            raise Conflict(
                "the subscription is disabled; enable it (PATCH) first", code="webhook_disabled"
            )
        # One run at a time: a repeated request while it is queued sends nothing more. A run
        # silent for longer than any backoff (900 s) has died (a crash between the write and
        # the send): that one may be started again.
        quiet_since = datetime.now(UTC) - timedelta(seconds=2 * MAX_DELAY_S)
        reopened = self._log.mark(
            owner, webhook_id, delivery_id, state="pending", now=utc_now(),
            unless=("pending", "retrying"),
            unless_since=quiet_since.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )  # fmt: skip
        if reopened is None:
            raise Conflict("this delivery is under way already", code="delivery_in_progress")
        message = DeliveryMessage(
            event=JobEvent.model_validate_json(logged.body),
            tenant=owner,
            target=webhook_id,
            url=subscription.url,
            attempts_before=len(logged.attempts),
        )
        try:
            self._queue.send(message.model_dump_json())
        except TransientError as exc:
            self._log.mark(owner, webhook_id, delivery_id, state=logged.state, now=utc_now())
            raise ServiceUnavailable(
                "the redelivery could not be queued; try again", code="queue_unavailable"
            ) from exc
        log.info("webhook redelivery queued", extra={"webhook": webhook_id, "id": delivery_id})
        return _shown(reopened)
