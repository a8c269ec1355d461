"""Webhook subscriptions, and what happens to each job event: results written back, webhooks
delivered with retries.

A job event (from the SNS topic) fans out into one delivery message per target on the webhooks
queue: the job's own ``webhook_url`` (signed with the tenant's signing secret) and every
subscription of the tenant that wants this event type (signed with its own secret). Each
message is one attempt; a failed attempt sends the next one as a new message delayed by an
exponential backoff with jitter (SQS ``DelaySeconds``, so no Lambda ever sleeps), up to
``WEBHOOK_MAX_ATTEMPTS``. The state of each delivery is kept beside the job and shown with it.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib import telemetry
from chalicelib.errors import BadRequest, NotFound
from chalicelib.jobs import utc_now
from chalicelib.queue import MAX_DELAY_S, Queue
from chalicelib.settings import Settings
from chalicelib.storage import ImageStore, results_key
from chalicelib.submission import json_object
from chalicelib.tenants import TenantStore, new_secret, tenant_pk
from chalicelib.webhooks import SIGNATURE_HEADER, Resolver, Sender, sign, system_resolver, vet_url

log = logging.getLogger(__name__)

EVENT_TYPES = ("job.succeeded", "job.failed")
JOB_TARGET = "job"  # the job's own webhook_url; subscriptions are named by their id


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt, as a message on the webhooks queue."""

    event: dict[str, Any]
    tenant: str
    target: str
    url: str
    attempt: int = 1

    @classmethod
    def parse(cls, body: str) -> Delivery | None:
        """The delivery in a queue message body, or None."""
        try:
            doc = json.loads(body)
            return cls(**doc)
        except (ValueError, TypeError):
            return None


def backoff_s(attempt: int, *, base_s: int, rng: random.Random) -> int:
    """Delay before attempt ``attempt + 1``: base·2^(attempt-1), capped at 900 s, half jittered."""
    ceiling = min(MAX_DELAY_S, base_s * 2 ** (attempt - 1))
    return int(ceiling / 2 + rng.uniform(0, ceiling / 2))


def _subscription_view(record: dict[str, Any], *, with_secret: bool = False) -> dict[str, Any]:
    view = {k: record[k] for k in ("id", "url", "events", "created_at")}
    if with_secret:
        view["secret"] = record["secret"]
    return view


class WebhookService:
    """Subscriptions, the fan-out of job events, and delivery attempts."""

    def __init__(
        self,
        *,
        settings: Settings,
        tenants: TenantStore,
        store: ImageStore,
        queue: Queue,
        sender: Sender,
        resolve: Resolver = system_resolver,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._tenants = tenants
        self._store = store
        self._queue = queue
        self._sender = sender
        self._resolve = resolve
        self._rng = rng or random.Random()
        self._clock = clock

    # --- subscriptions --------------------------------------------------------------------

    def subscribe(self, *, owner: str, body: bytes) -> dict[str, Any]:
        """``{"url", "events"?}`` → the subscription with its signing secret (shown once)."""
        doc = json_object(body)
        url = doc.get("url")
        vet_url(url, allow_hosts=self._settings.webhook_allow_hosts, resolve=self._resolve)
        events = doc.get("events", list(EVENT_TYPES))
        if (
            not isinstance(events, list)
            or not events
            or not all(isinstance(e, str) and e in EVENT_TYPES for e in events)
        ):
            raise BadRequest(
                f"events must be a non-empty list of {', '.join(EVENT_TYPES)}",
                code="invalid_events",
            )
        record = {
            "id": "wh_" + uuid.uuid4().hex,
            "url": url,
            "events": sorted(set(events)),
            "secret": new_secret(),
            "created_at": utc_now(),
        }
        self._tenants.put(tenant_pk(owner), f"WEBHOOK#{record['id']}", record)
        return _subscription_view(record, with_secret=True)

    def subscriptions(self, *, owner: str) -> list[dict[str, Any]]:
        """The caller's subscriptions (secrets are not shown again)."""
        return [_subscription_view(r) for r in self._tenants.query(tenant_pk(owner), "WEBHOOK#")]

    def unsubscribe(self, *, owner: str, webhook_id: str) -> None:
        """Remove one of the caller's subscriptions; 404 for anything else."""
        if not self._tenants.delete(tenant_pk(owner), f"WEBHOOK#{webhook_id}"):
            raise NotFound(f"no webhook {webhook_id!r}", code="webhook_not_found")

    def account(self, *, owner: str) -> dict[str, str]:
        """The caller's tenant and the secret its per-job webhooks are signed with."""
        return {"tenant": owner, "webhook_signing_secret": self._tenants.signing_secret(owner)}

    # --- job events -----------------------------------------------------------------------

    def on_job_events(self, messages: Sequence[tuple[str, str, str | None]]) -> list[str]:
        """Job events as the topic delivers them to an SQS queue, ten at a time: ``(message_id,
        body, tenant)``, the body the event itself and the tenant its message attribute (raw
        delivery), or the body an SNS envelope holding both. Return the ids SQS should hand
        over again."""
        subscriptions: dict[str, list[dict[str, Any]]] = {}  # per tenant, read once a batch
        failed = []
        for message_id, body, tenant in messages:
            parsed = _parse_job_event(body, tenant)
            if parsed is None:
                log.error("discarding a message that is not a job event", extra={"body": body[:99]})
                continue
            event, owner = parsed
            try:
                with telemetry.job_context(str(event["job"]["job_id"])):
                    self.on_job_event(event, tenant=owner, subscriptions=subscriptions)
            except Exception:
                log.exception("job event not handled; SQS will hand it over again")
                failed.append(message_id)
        return failed

    def on_job_event(
        self,
        event: dict[str, Any],
        *,
        tenant: str,
        subscriptions: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        """Write a bulk-dropped image's result beside it; queue one delivery per target."""
        job = event["job"]
        if job.get("source") == "s3" and job.get("filename"):
            self._store.put_json(results_key(tenant, job["filename"]), _result_document(event))
        targets: list[tuple[str, str]] = []
        if job.get("webhook_url"):
            targets.append((JOB_TARGET, job["webhook_url"]))
        cache = {} if subscriptions is None else subscriptions
        if tenant not in cache:
            cache[tenant] = self._tenants.query(tenant_pk(tenant), "WEBHOOK#")
        for sub in cache[tenant]:
            if event["type"] in sub["events"]:
                targets.append((sub["id"], sub["url"]))
        for target, url in targets:
            delivery = Delivery(event=event, tenant=tenant, target=target, url=url)
            # False: this event was already attempted for this target (the event came again, as
            # at-least-once delivery allows), or a newer one was: nothing to send.
            if self._record(delivery, state="pending", status=None, error=None):
                self._queue.send_body(json.dumps(asdict(delivery)))

    def deliver(self, bodies: Sequence[tuple[str, str]]) -> list[str]:
        """Attempt each ``(message_id, body)``; return the ids to hand back to SQS (only our
        own transient failures: a receiver's failure is retried by a new, delayed message)."""
        failed = []
        for message_id, body in bodies:
            delivery = Delivery.parse(body)
            if delivery is None:
                log.error("discarding a malformed delivery", extra={"body": body[:99]})
                continue
            try:
                self._attempt(delivery)
            except Exception:
                log.exception("delivery not attempted; SQS will retry it")
                failed.append(message_id)
        return failed

    def _secret(self, delivery: Delivery) -> str | None:
        if delivery.target == JOB_TARGET:
            return self._tenants.signing_secret(delivery.tenant)
        sub = self._tenants.get(tenant_pk(delivery.tenant), f"WEBHOOK#{delivery.target}")
        return None if sub is None else str(sub["secret"])

    def _attempt(self, delivery: Delivery) -> None:
        with telemetry.job_context(str(delivery.event["job"]["job_id"])):
            self._attempt_delivery(delivery)

    def _attempt_delivery(self, delivery: Delivery) -> None:
        secret = self._secret(delivery)
        if secret is None:
            self._record(delivery, state="cancelled", status=None, error="subscription deleted")
            return
        body = json.dumps(delivery.event, separators=(",", ":")).encode()
        headers = {
            SIGNATURE_HEADER: sign(secret, body, int(self._clock())),
            "X-Event-Id": str(delivery.event["id"]),
            "X-Event-Type": str(delivery.event["type"]),
            "X-Delivery-Attempt": str(delivery.attempt),
        }
        started = time.perf_counter()
        result = self._sender.post(delivery.url, body, headers)
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        extra = {"job_id": delivery.event["job"]["job_id"], "attempt": delivery.attempt}
        telemetry.observe_ms("webhook_latency_ms", elapsed_ms)
        if result.ok:
            telemetry.count("webhooks_delivered")
            log.info("webhook delivered", extra={**extra, "latency_ms": elapsed_ms})
            self._record(delivery, state="delivered", status=result.status, error=None)
            return
        error = result.error or f"HTTP {result.status}"
        telemetry.count("webhooks_failed")
        if delivery.attempt >= self._settings.webhook_max_attempts:
            log.warning("webhook failed for good", extra={**extra, "error": error})
            self._record(delivery, state="failed", status=result.status, error=error)
            return
        delay = backoff_s(
            delivery.attempt, base_s=self._settings.webhook_base_delay_s, rng=self._rng
        )
        following = Delivery(**{**asdict(delivery), "attempt": delivery.attempt + 1})
        self._queue.send_body(json.dumps(asdict(following)), delay_s=delay)
        log.info("webhook will be retried", extra={**extra, "error": error, "delay_s": delay})
        self._record(
            delivery,
            state="retrying",
            status=result.status,
            error=error,
            next_attempt_at=int(self._clock()) + delay,
        )

    def _record(
        self,
        delivery: Delivery,
        *,
        state: str,
        status: int | None,
        error: str | None,
        next_attempt_at: int | None = None,
    ) -> bool:
        """Keep the delivery's state beside the job; a late or repeated write of an older event
        or an earlier attempt changes nothing (and answers False)."""
        attempts = delivery.attempt if state != "pending" else 0
        return self._tenants.put_if(
            f"JOB#{delivery.event['job']['job_id']}",
            f"DELIVERY#{delivery.target}",
            {
                "target": delivery.target,
                "url": delivery.url,
                "event_id": delivery.event["id"],
                "event_type": delivery.event["type"],
                "event_created_at": delivery.event["created_at"],
                "state": state,
                "attempts": attempts,
                "last_status": status,
                "last_error": error,
                "next_attempt_at": next_attempt_at,
                "updated_at": utc_now(),
                "expires_at": int(self._clock()) + self._settings.retention_days * 86400,
            },
            condition="#created < :created OR (#event = :event AND #attempts <= :attempts)",
            names={"#created": "event_created_at", "#event": "event_id", "#attempts": "attempts"},
            condition_values={
                ":created": delivery.event["created_at"],
                ":event": delivery.event["id"],
                ":attempts": attempts,
            },
        )


def _parse_job_event(body: str, tenant: str | None) -> tuple[dict[str, Any], str] | None:
    """The event and its tenant from a raw delivery or an SNS envelope; None if neither."""
    try:
        doc = json.loads(body)
        if tenant is None:  # an envelope: the event and its attributes inside
            tenant = doc["MessageAttributes"]["tenant"]["Value"]
            doc = json.loads(doc["Message"])
        if not isinstance(doc, dict) or not isinstance(doc["job"]["job_id"], str):
            return None
    except (ValueError, KeyError, TypeError):
        return None
    return doc, str(tenant)


def _result_document(event: dict[str, Any]) -> dict[str, Any]:
    job = event["job"]
    keep = ("job_id", "status", "predictions", "model", "error", "attempts", "updated_at")
    return {**{k: job.get(k) for k in keep}, "source": job.get("filename")}
