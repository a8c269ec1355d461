"""Endpoint health (410 disables, failures in a row disable, PATCH enables), Retry-After, the
batch's time budget, and the cap on subscriptions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.webhook_delivery import Deliverer
from chalicelib.webhook_http import DeliveryResult
from tests.builders import sqs_event
from tests.functional.conftest import KEY_B, Api, Stack
from tests.functional.test_ways_in_and_out import (
    NOTHING_FAILED,
    classify_all,
    deliver_all,
    notify_all,
    subscribe,
)
from tests.photos import cat_jpeg

HOOK = "https://hooks.example.org/health"


def finish_job(api: Api, stack: Stack) -> str:
    job_id = api.submit(cat_jpeg(), cache="false")
    classify_all(api, stack)
    notify_all(api, stack)
    deliver_all(api, stack)
    return job_id


def listed(api: Api, webhook_id: str) -> dict[str, Any]:
    [found] = [w for w in api.get("/webhooks").json["webhooks"] if w["id"] == webhook_id]
    return dict(found)


def reinstall_deliverer(stack: Stack, clock: Any = None, **settings: Any) -> None:
    adapters = stack.services.adapters
    options: dict[str, Any] = {} if clock is None else {"monotonic": clock}
    stack.install(
        deliveries=Deliverer(
            settings=stack.settings.model_copy(update=settings),
            webhooks=adapters.webhooks,
            deliveries=adapters.deliveries,
            queue=adapters.webhooks_queue,
            sender=stack.sender,
            delivery_log=adapters.delivery_log,
            **options,
        )
    )


def test_a_410_disables_the_subscription_at_once_and_it_then_receives_nothing(
    api: Api, stack: Stack
) -> None:
    # GIVEN a subscription whose endpoint answers 410 Gone
    sub = subscribe(api, {"url": HOOK}).json
    assert (listed(api, sub["id"])["enabled"], listed(api, sub["id"])["disabled_reason"]) == (
        True,
        None,
    )
    stack.sender.answers = [DeliveryResult(410, "refused")]

    # WHEN an event is delivered to it
    finish_job(api, stack)

    # THEN that one attempt is all: the subscription is disabled, saying why
    assert len(stack.sender.posts) == 1
    shown = listed(api, sub["id"])
    assert (shown["enabled"], shown["disabled_reason"]) == (False, "endpoint_gone")
    assert shown["disabled_at"] is not None
    [entry] = api.get(f"/webhooks/{sub['id']}/deliveries").json["deliveries"]
    assert (entry["state"], entry["attempts"][0]["status"]) == ("failed", 410)
    # and the next job sends it nothing
    finish_job(api, stack)
    assert len(stack.sender.posts) == 1
    # nor may it be redelivered until it is enabled again
    redeliver = api.post(f"/webhooks/{sub['id']}/deliveries/{entry['id']}/redeliver")
    assert (redeliver.status, redeliver.error_code) == (409, "webhook_disabled")


def test_patch_enables_it_again_and_deliveries_resume(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    stack.sender.answers = [DeliveryResult(410, "refused")]
    finish_job(api, stack)

    resp = api.request("PATCH", f"/webhooks/{sub['id']}", json_body={"enabled": True})

    assert resp.status == 200
    assert (resp.json["enabled"], resp.json["disabled_reason"], resp.json["failed_events"]) == (
        True,
        None,
        0,
    )
    assert "secret" not in resp.json
    finish_job(api, stack)
    assert len(stack.sender.posts) == 2


def test_patch_can_disable_and_refuses_bad_bodies_and_other_tenants(api: Api) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    path = f"/webhooks/{sub['id']}"

    off = api.request("PATCH", path, json_body={"enabled": False})
    assert (off.json["enabled"], off.json["disabled_reason"]) == (False, "disabled_by_owner")
    for body in ({}, {"enabled": "yes"}):
        bad = api.request("PATCH", path, json_body=body)
        assert (bad.status, bad.error_code) == (400, "invalid_enabled")
    other = api.request("PATCH", path, key=KEY_B, json_body={"enabled": True})
    assert (other.status, other.error_code) == (404, "webhook_not_found")
    assert listed(api, sub["id"])["enabled"] is False


def test_events_failing_for_good_in_a_row_disable_it_and_a_success_resets_the_count(
    api: Api, stack: Stack
) -> None:
    # GIVEN one attempt per event and subscriptions disabled after two failed events in a row
    reinstall_deliverer(stack, webhook_max_attempts=1, webhook_disable_after=2)
    sub = subscribe(api, {"url": HOOK}).json

    # WHEN events fail, succeed, then fail twice
    stack.sender.answers = [DeliveryResult(500, "refused")]
    finish_job(api, stack)
    assert listed(api, sub["id"])["failed_events"] == 1
    finish_job(api, stack)  # delivered
    assert listed(api, sub["id"])["failed_events"] == 0
    stack.sender.answers = [DeliveryResult(500, "refused")]
    finish_job(api, stack)
    assert listed(api, sub["id"])["enabled"] is True
    stack.sender.answers = [DeliveryResult(None, "timed out")]
    finish_job(api, stack)

    # THEN the second failure in a row disabled it
    shown = listed(api, sub["id"])
    assert (shown["enabled"], shown["disabled_reason"], shown["failed_events"]) == (
        False,
        "consecutive_failures",
        2,
    )


def test_a_retry_in_flight_to_a_disabled_subscription_is_cancelled(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    api.submit(cat_jpeg(), cache="false")
    classify_all(api, stack)
    notify_all(api, stack)
    api.request("PATCH", f"/webhooks/{sub['id']}", json_body={"enabled": False})

    deliver_all(api, stack)

    assert stack.sender.posts == []
    [entry] = api.get(f"/webhooks/{sub['id']}/deliveries").json["deliveries"]
    assert (entry["state"], entry["attempts"]) == ("cancelled", [])


@pytest.mark.parametrize(("retry_after", "delay"), [(120, 120), (86400, 900)])
def test_retry_after_sets_the_next_attempts_delay_within_the_ceiling(
    api: Api, stack: Stack, retry_after: int, delay: int
) -> None:
    # GIVEN a receiver that answers 429 with Retry-After
    sub = subscribe(api, {"url": HOOK}).json
    api.submit(cat_jpeg(), cache="false")
    classify_all(api, stack)
    notify_all(api, stack)
    stack.sender.answers = [DeliveryResult(429, "refused", retry_after_s=retry_after)]

    # WHEN the first attempt is made
    before = datetime.now(UTC)
    deliver_all(api, stack)

    # THEN the next one is due when the receiver asked, but never past SQS's 900 s
    [entry] = api.get(f"/webhooks/{sub['id']}/deliveries").json["deliveries"]
    assert (entry["state"], entry["attempts"][0]["status"]) == ("retrying", 429)
    due = datetime.fromisoformat(entry["next_attempt_at"])
    assert abs((due - before).total_seconds() - delay) < 3
    # and waits on the queue meanwhile
    assert stack.receive(stack.resources.webhooks_queue_url)["Records"] == []


def test_a_batch_past_its_budget_puts_the_rest_back_on_the_queue(api: Api, stack: Stack) -> None:
    # GIVEN a batch budget of 10 s, attempts of up to 5 s, and a clock where each attempt takes 4 s
    ticks = iter(range(0, 1000, 4))
    reinstall_deliverer(
        stack,
        clock=lambda: float(next(ticks)),
        webhook_batch_budget_s=10,
        webhook_timeout_s=5,
    )
    subscribe(api, {"url": HOOK})
    for _ in range(4):
        api.submit(cat_jpeg(), cache="false")
    classify_all(api, stack)
    notify_all(api, stack)
    event = stack.receive(stack.resources.webhooks_queue_url)
    assert len(event["Records"]) == 4

    # WHEN the batch is handled
    result = api.invoke("deliver_webhooks", event)

    # THEN only what fits the budget was attempted; the rest is queued again, none failed
    assert result == NOTHING_FAILED
    attempted = len(stack.sender.posts)
    assert attempted == 2  # at 0 s and at 4 s; one more could end after 10 s
    requeued = stack.receive(stack.resources.webhooks_queue_url)["Records"]
    assert len(requeued) == 4 - attempted
    assert {json.loads(r["body"])["attempt"] for r in requeued} == {1}
    # and they are delivered by a later batch
    assert api.invoke("deliver_webhooks", sqs_event(*requeued)) == NOTHING_FAILED


def test_a_tenant_may_hold_only_so_many_subscriptions(api: Api, stack: Stack) -> None:
    cap = stack.settings.max_webhooks_per_tenant
    for i in range(cap):
        assert subscribe(api, {"url": f"https://example.com/h{i}"}).status == 201

    over = subscribe(api, {"url": "https://example.com/one-more"})

    assert (over.status, over.error_code) == (409, "too_many_webhooks")
    assert subscribe(api, {"url": "https://example.com/one-more"}, key=KEY_B).status == 201


def test_a_url_subscribed_twice_is_refused(api: Api) -> None:
    assert subscribe(api, {"url": HOOK}).status == 201

    again = subscribe(api, {"url": HOOK, "events": ["job.failed"]})

    assert (again.status, again.error_code) == (409, "duplicate_webhook")
    assert subscribe(api, {"url": HOOK}, key=KEY_B).status == 201


def test_a_url_is_claimed_by_a_conditional_write_that_a_deleted_or_dead_subscription_gives_up(
    api: Api, stack: Stack
) -> None:
    store = stack.services.adapters.webhooks
    sub = subscribe(api, {"url": HOOK}).json
    # A second creation racing past the read check still finds the URL taken
    assert store.claim_url("a", HOOK, "wh_" + "1" * 32) == sub["id"]
    # Deleting the subscription gives its URL up
    assert api.delete(f"/webhooks/{sub['id']}").status == 204
    again = subscribe(api, {"url": HOOK})
    assert again.status == 201
    # and a claim left by a creation that died before its subscription was written is taken over
    other = "https://hooks.example.org/orphan"
    assert store.claim_url("a", other, "wh_" + "2" * 32) is None
    assert subscribe(api, {"url": other}).status == 201
