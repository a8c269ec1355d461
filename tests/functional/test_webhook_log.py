"""A subscription's delivery log, and redelivery with the same ``webhook-id``."""

from __future__ import annotations

from typing import Any

from chalicelib.delivery_store import MAX_LOGGED_ATTEMPTS, Attempt
from chalicelib.errors import TransientError
from chalicelib.queues import Queue
from chalicelib.webhook_http import DeliveryResult
from chalicelib.webhook_log import WebhookLog
from tests.functional.conftest import KEY_A, KEY_B, Api, Stack
from tests.functional.test_ways_in_and_out import classify_all, deliver_all, notify_all, subscribe
from tests.photos import cat_jpeg
from tests.verifiers import verify_delivery

HOOK = "https://hooks.example.org/log"


def finish_jobs(api: Api, stack: Stack, count: int = 1) -> list[str]:
    """Jobs submitted, classified and their events fanned out and delivered."""
    jobs = [api.submit(cat_jpeg()) for _ in range(count)]
    classify_all(api, stack)
    notify_all(api, stack)
    deliver_all(api, stack)
    return jobs


def deliveries(api: Api, webhook_id: str, **query: str) -> Any:
    answer = api.get(f"/webhooks/{webhook_id}/deliveries", query=query or None)
    assert answer.status == 200, answer.body
    return answer.json


def test_the_log_shows_each_delivery_with_every_attempt(api: Api, stack: Stack) -> None:
    # GIVEN a subscription whose receiver fails once, then accepts
    sub = subscribe(api, {"url": HOOK}).json
    stack.sender.answers = [DeliveryResult(503, "refused")]

    # WHEN a job's event is delivered
    [job_id] = finish_jobs(api, stack)

    # THEN the log holds the delivery: event, state, and both attempts with status and duration
    [entry] = deliveries(api, sub["id"])["deliveries"]
    event = stack.sender.posts[0]
    assert entry["event_id"] == event[2]["X-Event-Id"]
    assert (entry["event_type"], entry["state"], entry["webhook_id"]) == (
        "job.succeeded",
        "delivered",
        sub["id"],
    )
    assert entry["message_id"] == event[2]["webhook-id"]
    assert [(a["status"], a["error"]) for a in entry["attempts"]] == [(503, "refused"), (200, None)]
    assert all(a["duration_ms"] >= 0 and a["at"].endswith("Z") for a in entry["attempts"])
    assert entry["next_attempt_at"] is None
    assert api.job(job_id)["webhooks"][0]["attempts"] == 2


def test_the_log_is_paged_newest_first(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    finish_jobs(api, stack, count=3)

    first = deliveries(api, sub["id"], limit="2")
    rest = deliveries(api, sub["id"], limit="2", next_token=first["next_token"])

    shown = first["deliveries"] + rest["deliveries"]
    assert len(shown) == 3
    assert rest["next_token"] is None
    times = [d["event_created_at"] for d in shown]
    assert times == sorted(times, reverse=True)
    assert len({d["id"] for d in shown}) == 3


def test_a_bad_page_token_or_limit_is_400(api: Api) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    path = f"/webhooks/{sub['id']}/deliveries"

    for query, code in (
        ({"next_token": "garbage!"}, "invalid_next_token"),
        ({"limit": "0"}, "invalid_limit"),
    ):
        resp = api.get(path, query=query)
        assert (resp.status, resp.error_code) == (400, code)


def test_a_redelivery_carries_the_same_webhook_id_and_verifies(api: Api, stack: Stack) -> None:
    # GIVEN a delivered event
    sub = subscribe(api, {"url": HOOK}).json
    finish_jobs(api, stack)
    [entry] = deliveries(api, sub["id"])["deliveries"]
    [(_, first_body, first_headers)] = stack.sender.posts

    # WHEN its owner asks for it again
    resp = api.post(f"/webhooks/{sub['id']}/deliveries/{entry['id']}/redeliver")
    assert resp.status == 202
    assert (resp.json["id"], resp.json["state"]) == (entry["id"], "pending")
    deliver_all(api, stack)

    # THEN the receiver gets the same body under the same webhook-id, freshly signed
    [_, (url, body, headers)] = stack.sender.posts
    assert url == HOOK
    assert headers["webhook-id"] == first_headers["webhook-id"]
    assert body == first_body
    assert headers["X-Delivery-Attempt"] == "2"
    verify_delivery(sub["secret"], body, headers)
    # and the log shows both attempts
    [again] = deliveries(api, sub["id"])["deliveries"]
    assert (again["state"], len(again["attempts"])) == ("delivered", 2)


def test_a_redelivery_asked_twice_while_queued_is_sent_once(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    finish_jobs(api, stack)
    [entry] = deliveries(api, sub["id"])["deliveries"]
    path = f"/webhooks/{sub['id']}/deliveries/{entry['id']}/redeliver"

    assert api.post(path).status == 202
    again = api.post(path)

    assert (again.status, again.error_code) == (409, "delivery_in_progress")
    deliver_all(api, stack)
    assert len(stack.sender.posts) == 2


def test_another_tenants_log_and_deliveries_are_404(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    finish_jobs(api, stack)
    [entry] = deliveries(api, sub["id"])["deliveries"]
    redeliver = f"/webhooks/{sub['id']}/deliveries/{entry['id']}/redeliver"

    for method, path, key, code in (
        ("GET", f"/webhooks/{sub['id']}/deliveries", KEY_B, "webhook_not_found"),
        ("POST", redeliver, KEY_B, "webhook_not_found"),
        ("GET", "/webhooks/wh_unknown/deliveries", KEY_A, "webhook_not_found"),
        ("GET", f"/webhooks/wh_{'0' * 2000}/deliveries", KEY_A, "webhook_not_found"),
        ("PATCH", f"/webhooks/wh_{'0' * 2000}", KEY_A, "webhook_not_found"),
        (
            "POST",
            f"/webhooks/{sub['id']}/deliveries/dlv_unknown/redeliver",
            KEY_A,
            "delivery_not_found",
        ),
    ):
        body = {"enabled": True} if method == "PATCH" else None
        resp = api.request(method, path, key=key, json_body=body)
        assert (resp.status, resp.error_code) == (404, code), path
    assert len(stack.sender.posts) == 1


class DownQueue(Queue):
    """The webhooks queue, refusing every message."""

    def __init__(self) -> None:
        pass

    def send(self, body: str, *, delay_s: int = 0, group: str | None = None) -> None:
        raise TransientError("SQS is down")


def test_a_redelivery_that_cannot_be_queued_is_503_and_can_be_asked_again(
    api: Api, stack: Stack
) -> None:
    # GIVEN a delivered event, and the webhooks queue down
    sub = subscribe(api, {"url": HOOK}).json
    finish_jobs(api, stack)
    [entry] = deliveries(api, sub["id"])["deliveries"]
    adapters = stack.services.adapters
    healthy = stack.services.webhook_log
    stack.install(
        webhook_log=WebhookLog(
            webhooks=adapters.webhooks, log_store=adapters.delivery_log, queue=DownQueue()
        )
    )
    path = f"/webhooks/{sub['id']}/deliveries/{entry['id']}/redeliver"

    # WHEN a redelivery is asked for
    resp = api.post(path)

    # THEN it is a 503 and the delivery is as it was, so asking again once SQS is back works
    assert (resp.status, resp.error_code) == (503, "queue_unavailable")
    assert deliveries(api, sub["id"])["deliveries"][0]["state"] == "delivered"
    stack.install(webhook_log=healthy)
    assert api.post(path).status == 202


def test_a_redelivery_silent_for_longer_than_any_backoff_may_be_asked_again(
    api: Api, stack: Stack
) -> None:
    # GIVEN a delivery left pending long ago by a run that died before it was queued
    sub = subscribe(api, {"url": HOOK}).json
    finish_jobs(api, stack)
    [entry] = deliveries(api, sub["id"])["deliveries"]
    log = stack.services.adapters.delivery_log
    long_ago = "2000-01-01T00:00:00.000Z"
    assert log.mark("a", sub["id"], entry["id"], state="pending", now=long_ago)

    # WHEN it is asked for again, THEN it is queued, not held as under way forever
    assert api.post(f"/webhooks/{sub['id']}/deliveries/{entry['id']}/redeliver").status == 202
    deliver_all(api, stack)
    assert len(stack.sender.posts) == 2


def test_the_log_keeps_the_latest_attempts_of_a_delivery_resent_many_times(
    api: Api, stack: Stack
) -> None:
    sub = subscribe(api, {"url": HOOK}).json
    finish_jobs(api, stack)
    [entry] = deliveries(api, sub["id"])["deliveries"]
    log = stack.services.adapters.delivery_log

    for i in range(MAX_LOGGED_ATTEMPTS + 2):
        attempt = Attempt(at=f"2030-01-01T00:00:{i:02d}.000Z", status=500, duration_ms=i)
        log.attempted(
            "a", sub["id"], entry["id"], attempt=attempt, state="failed", next_attempt_at=None
        )

    [shown] = deliveries(api, sub["id"])["deliveries"]
    kept = [a["duration_ms"] for a in shown["attempts"]]
    assert kept == list(range(2, MAX_LOGGED_ATTEMPTS + 2))
