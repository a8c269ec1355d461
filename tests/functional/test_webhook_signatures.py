"""Deliveries are signed as Standard Webhooks and as Stripe-style X-Signature, checked with those
schemes' own verifiers; a subscription's secret can be rotated without missing a delivery."""

from __future__ import annotations

import base64
import time

from chalicelib.signatures import new_secret, secret_key
from chalicelib.webhook_http import DeliveryResult
from tests.functional.conftest import KEY_A, KEY_B, Api, Stack
from tests.functional.test_ways_in_and_out import classify_all, deliver_all, notify_all, subscribe
from tests.photos import cat_jpeg
from tests.verifiers import rejected, verify_delivery


def test_secrets_are_whsec_and_base64_of_32_random_bytes() -> None:
    secret = new_secret()

    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert secret_key(secret) == base64.b64decode(secret.removeprefix("whsec_"))
    assert new_secret() != secret


def deliver_one_job(api: Api, stack: Stack) -> None:
    api.submit(cat_jpeg())
    classify_all(api, stack)
    notify_all(api, stack)
    deliver_all(api, stack)


def test_a_delivery_verifies_with_standard_webhooks_and_stripe(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": "https://hooks.example.org/all"}).json

    deliver_one_job(api, stack)

    [(_, body, headers)] = stack.sender.posts
    verify_delivery(sub["secret"], body, headers)
    assert headers["webhook-id"].startswith("msg_")
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert rejected(new_secret(), body, headers)  # another secret does not verify
    assert rejected(sub["secret"], body + b" ", headers)  # nor a changed body


def test_a_retry_carries_the_same_webhook_id_and_a_fresh_signature(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": "https://hooks.example.org/all"}).json
    stack.sender.answers = [DeliveryResult(500, "refused")]

    deliver_one_job(api, stack)

    first, second = stack.sender.posts
    assert first[2]["webhook-id"] == second[2]["webhook-id"]
    assert (first[2]["X-Delivery-Attempt"], second[2]["X-Delivery-Attempt"]) == ("1", "2")
    verify_delivery(sub["secret"], second[1], second[2])


def test_after_a_rotation_both_secrets_sign_for_a_day(api: Api, stack: Stack) -> None:
    # GIVEN a subscription whose secret is rotated
    sub = subscribe(api, {"url": "https://hooks.example.org/all"}).json
    rotated = api.post(f"/webhooks/{sub['id']}/rotate-secret")
    assert rotated.status == 200
    new = rotated.json
    assert new["secret"] != sub["secret"]
    assert {k: v for k, v in new.items() if k != "secret"} == {
        k: v for k, v in sub.items() if k != "secret"
    }

    # WHEN a job's event is delivered
    deliver_one_job(api, stack)

    # THEN the receiver verifies it with either secret: two signatures, space-separated
    [(_, body, headers)] = stack.sender.posts
    assert len(headers["webhook-signature"].split(" ")) == 2
    verify_delivery(new["secret"], body, headers)
    verify_delivery(sub["secret"], body, headers)
    # and the listing never shows a secret
    assert "secret" not in api.get("/webhooks").json["webhooks"][0]


def test_a_day_after_a_rotation_only_the_new_secret_signs(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": "https://hooks.example.org/all"}).json
    new = api.post(f"/webhooks/{sub['id']}/rotate-secret").json
    store = stack.services.adapters.webhooks
    stored = store.get("a", sub["id"])
    assert stored is not None
    day_later = time.time() + 24 * 3600 + 1

    assert stored.signing_secrets(now=day_later) == [new["secret"]]
    assert stored.signing_secrets(now=time.time()) == [new["secret"], sub["secret"]]


def test_rotating_another_tenants_or_an_unknown_subscription_is_404(api: Api) -> None:
    sub = subscribe(api, {"url": "https://hooks.example.org/all"}).json

    for key, webhook_id in ((KEY_B, sub["id"]), (KEY_A, "wh_unknown")):
        resp = api.post(f"/webhooks/{webhook_id}/rotate-secret", key=key)
        assert (resp.status, resp.error_code) == (404, "webhook_not_found")
