"""Batches, presigned uploads, bulk drops into the bucket, job events, webhooks, deletion."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from chalicelib.contract import JobEvent
from chalicelib.webhook_delivery import Deliverer, backoff_s
from chalicelib.webhook_http import DeliveryResult
from tests.builders import multipart, sqs_event, sqs_record
from tests.functional.conftest import KEY_A, KEY_B, Api, Stack
from tests.photos import CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg
from tests.verifiers import verify_delivery

NOTHING_FAILED: dict[str, list[dict[str, str]]] = {"batchItemFailures": []}


def post_batch(api: Api, files: list[tuple[str, bytes]], key: str = KEY_A) -> Any:
    """POST /batches with one ``images`` part per ``(filename, data)`` and a text field."""
    body, ctype = multipart(
        [("images", filename, data) for filename, data in files], {"note": "holiday"}
    )
    return api.post("/batches", key=key, body=body, headers={"content-type": ctype})


def drain(api: Api, stack: Stack, handler: str, queue_url: str) -> None:
    """Hand ``handler`` what waits on its queue, as Lambda would, until the queue is empty."""
    rounds = 0
    while (event := stack.receive(queue_url))["Records"]:
        assert api.invoke(handler, event) == NOTHING_FAILED
        rounds += 1
        assert rounds < 20, f"{handler} keeps finding work"


def classify_all(api: Api, stack: Stack) -> None:
    drain(api, stack, "classify", stack.resources.jobs_queue_url)


def notify_all(api: Api, stack: Stack) -> list[dict[str, Any]]:
    """Hand the notify function what the topic delivered to its queue; the events published."""
    drain(api, stack, "notify", stack.resources.notify_queue_url)
    return stack.published_events()


def deliver_all(api: Api, stack: Stack) -> None:
    drain(api, stack, "deliver_webhooks", stack.resources.webhooks_queue_url)


def subscribe(api: Api, body: dict[str, Any], key: str = KEY_A) -> Any:
    return api.post("/webhooks", key=key, json_body=body)


# --- batches ---------------------------------------------------------------------------------


def test_batch_makes_a_job_per_good_file_and_reports_the_bad_one(api: Api, stack: Stack) -> None:
    resp = post_batch(
        api,
        [("cat.jpg", cat_jpeg()), ("notes.txt", b"not an image"), ("cup.png", COFFEE.read_bytes())],
    )

    assert resp.status == 202, resp.body
    body = resp.json
    assert len(body["job_ids"]) == 2
    assert [(r["index"], r["filename"], r["error"]["code"]) for r in body["rejected"]] == [
        (1, "notes.txt", "unsupported_image")
    ]
    assert resp.headers["Location"] == body["status_url"] == f"/batches/{body['batch_id']}"
    waiting = api.get(body["status_url"]).json
    assert waiting["status"] == "waiting"
    assert waiting["progress"] == {
        "total": 2,
        "pending": 2,
        "processing": 0,
        "succeeded": 0,
        "failed": 0,
        "canceled": 0,
    }

    classify_all(api, stack)

    done = api.get(body["status_url"]).json
    assert done["status"] == "completed"
    assert done["progress"]["succeeded"] == 2
    by_name = {j["filename"]: j for j in done["jobs"]}
    assert by_name["cat.jpg"]["predictions"][0]["class_id"] in CAT_CLASSES
    assert by_name["cup.png"]["predictions"][0]["class_id"] == ESPRESSO
    assert {j["batch_id"] for j in done["jobs"]} == {body["batch_id"]}


def test_a_batch_with_an_undecodable_file_completes_with_errors(api: Api, stack: Stack) -> None:
    body = post_batch(api, [("ok.jpg", cat_jpeg()), ("cut.jpg", cat_jpeg()[:3000])]).json
    classify_all(api, stack)
    done = api.get(body["status_url"]).json
    assert done["status"] == "completed_with_errors"
    assert (done["progress"]["succeeded"], done["progress"]["failed"]) == (1, 1)


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ([], "missing_images"),
        ([("a.txt", b"text"), ("b.txt", b"more text")], "no_valid_images"),
        ([(f"{i}.jpg", b"x") for i in range(51)], "too_many_images"),
    ],
)
def test_batches_that_cannot_make_any_job_are_400(
    api: Api, stack: Stack, files: list[tuple[str, bytes]], code: str
) -> None:
    resp = post_batch(api, files)
    assert resp.status == 400
    assert resp.error_code == code
    assert stack.receive_jobs_event()["Records"] == []


def test_another_tenants_batch_is_404(api: Api) -> None:
    body = post_batch(api, [("cat.jpg", cat_jpeg())]).json
    assert api.get(body["status_url"], key=KEY_B).status == 404
    assert api.get("/batches/" + "0" * 32).status == 404
    assert api.get("/batches/junk").status == 404


# --- presigned uploads and bulk drops ------------------------------------------------------------


def upload(
    api: Api,
    data: bytes,
    content_type: str = "image/jpeg",
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Ask for a presigned POST (with ``options``) and send ``data`` to S3 with it; the answer
    to the request."""
    body = {"filename": "../My Photo.jpg", "content_type": content_type, **(options or {})}
    resp = api.post("/uploads", json_body=body)
    assert resp.status == 201, resp.body
    form = resp.json
    sent = requests.post(
        form["upload"]["url"],
        data=form["upload"]["fields"],
        files={"file": ("p", data, content_type)},
        timeout=30,
    )
    assert sent.status_code in (200, 201, 204), sent.text
    return dict(form)


def is_s3_test_event(record: dict[str, Any]) -> bool:
    """Whether a record is the test event S3 sends when a bucket's notifications are set."""
    return bool(json.loads(record["body"]).get("Event") == "s3:TestEvent")


def s3_notifications(stack: Stack) -> dict[str, Any]:
    """What S3 announced on the ingest queue, as the ingest function's event, without S3's test
    event (``test_s3s_test_event_is_acknowledged_and_makes_no_job`` has it)."""
    event = stack.receive(stack.resources.ingest_queue_url)
    return sqs_event(*(r for r in event["Records"] if not is_s3_test_event(r)))


def test_s3s_test_event_is_acknowledged_and_makes_no_job(api: Api, stack: Stack) -> None:
    # GIVEN the test event S3 sent when the bootstrap configured the bucket's notifications
    event = stack.receive(stack.resources.ingest_queue_url)
    assert [is_s3_test_event(r) for r in event["Records"]] == [True]

    # WHEN the ingest function handles it
    result = api.invoke("ingest", event)

    # THEN it is acknowledged (not handed over again until the dead-letter queue) and no job made
    assert result == NOTHING_FAILED
    assert api.get("/jobs").json["jobs"] == []


def test_presigned_upload_becomes_a_job_when_s3_says_it_arrived(api: Api, stack: Stack) -> None:
    form = upload(api, cat_jpeg())
    job_id = form["job_id"]
    fields = form["upload"]["fields"]
    assert fields["key"] == f"uploads/a/{job_id}/My_Photo.jpg"
    assert api.get(f"/jobs/{job_id}").status == 404  # the S3 event, not the client, makes the job

    event = s3_notifications(stack)
    assert len(event["Records"]) == 1
    assert api.invoke("ingest", event) == NOTHING_FAILED
    assert api.invoke("ingest", event) == NOTHING_FAILED  # S3 and SQS deliver at least once

    pending = api.job(job_id)
    assert (pending["status"], pending["source"], pending["filename"]) == (
        "PENDING",
        "upload",
        "My_Photo.jpg",
    )
    listed = api.get("/jobs").json["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]  # one job, however often S3 told us
    classify_all(api, stack)  # a still-PENDING job is queued again: that copy is a no-op
    done = api.job(job_id)
    assert done["predictions"][0]["class_id"] in CAT_CLASSES
    assert done["attempts"] == 1


def send_again(form: dict[str, Any], data: bytes) -> None:
    """Use an upload form a second time, as anyone holding it may while it is valid."""
    sent = requests.post(
        form["upload"]["url"],
        data=form["upload"]["fields"],
        files={"file": ("p", data, "image/jpeg")},
        timeout=30,
    )
    assert sent.status_code in (200, 201, 204), sent.text


def test_an_upload_form_used_again_cannot_replace_the_image_of_its_job(
    api: Api, stack: Stack
) -> None:
    s3, bucket = stack.clients.s3, stack.settings.bucket
    # GIVEN an upload that became a job and finished
    original = cat_jpeg()
    form = upload(api, original)
    job_id = form["job_id"]
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED
    classify_all(api, stack)
    done = api.job(job_id)
    assert done["status"] == "SUCCEEDED"
    # the image moved to the job's own key; the upload object is gone
    own = s3.get_object(Bucket=bucket, Key=f"images/a/{job_id}")["Body"].read()
    assert own == original
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"uploads/a/{job_id}/")

    # WHEN the same form sends another image
    send_again(form, COFFEE.read_bytes())
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED

    # THEN the job and its image are as they were, and the intruding object is removed
    # (image_url is signed anew at each read: two reads a second apart differ in it)
    again = api.job(job_id)
    assert again.pop("image_url").startswith("https://")
    assert again == {k: v for k, v in done.items() if k != "image_url"}
    assert s3.get_object(Bucket=bucket, Key=f"images/a/{job_id}")["Body"].read() == original
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"uploads/a/{job_id}/")
    assert stack.receive_jobs_event()["Records"] == []  # nothing queued again
    # AND the same bytes again are a repeated event: no second job, nothing changes
    send_again(form, original)
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED
    assert api.job(job_id)["status"] == "SUCCEEDED"
    assert [j["job_id"] for j in api.get("/jobs").json["jobs"]] == [job_id]


def test_upload_of_something_that_is_not_an_image_ends_failed_with_the_reason(
    api: Api, stack: Stack
) -> None:
    job_id = upload(api, b"%PDF-1.4 not really an image", "image/png")["job_id"]
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED
    failed = api.job(job_id)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "unsupported_image"
    assert [e["event"]["type"] for e in stack.published_events()] == ["job.failed"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"filename": "x.svg", "content_type": "image/svg+xml"}, 415, "unsupported_content_type"),
        ({"filename": 7, "content_type": "image/png"}, 400, "invalid_filename"),
        ([], 400, "invalid_json"),
    ],
)
def test_bad_upload_requests_are_4xx(api: Api, body: Any, status: int, code: str) -> None:
    resp = api.post("/uploads", json_body=body)
    assert (resp.status, resp.error_code) == (status, code)


def test_bulk_drop_makes_one_job_per_object_version_and_writes_the_result_beside_it(
    api: Api, stack: Stack
) -> None:
    s3, bucket = stack.clients.s3, stack.settings.bucket
    s3.put_object(Bucket=bucket, Key="incoming/a/holiday/cat 1.jpg", Body=cat_jpeg())
    event = s3_notifications(stack)
    assert api.invoke("ingest", event) == NOTHING_FAILED
    assert api.invoke("ingest", event) == NOTHING_FAILED  # a repeated event

    listed = api.get("/jobs").json["jobs"]
    assert [(j["source"], j["filename"]) for j in listed] == [("s3", "holiday/cat 1.jpg")]
    classify_all(api, stack)
    assert len(notify_all(api, stack)) == 1

    result = json.loads(
        s3.get_object(Bucket=bucket, Key="results/a/holiday/cat 1.jpg.json")["Body"].read()
    )
    assert result["job_id"] == listed[0]["job_id"]
    assert result["status"] == "SUCCEEDED"
    assert result["predictions"][0]["class_id"] in CAT_CLASSES

    s3.put_object(Bucket=bucket, Key="incoming/a/holiday/cat 1.jpg", Body=cat_jpeg(quality=70))
    assert api.invoke("ingest", s3_notifications(stack)) == NOTHING_FAILED
    assert len(api.get("/jobs").json["jobs"]) == 2  # a new version of the object: a new job


# --- job events and webhooks ---------------------------------------------------------------------


def test_subscriptions_are_per_tenant_and_show_their_secret_once(api: Api) -> None:
    made = subscribe(api, {"url": "https://example.com/h", "events": ["job.failed"]})
    assert made.status == 201
    sub = made.json
    assert sub["secret"].startswith("whsec_")
    assert sub["events"] == ["job.failed"]
    listed = api.get("/webhooks").json["webhooks"]
    assert listed == [{k: v for k, v in sub.items() if k != "secret"}]
    assert api.get("/webhooks", key=KEY_B).json["webhooks"] == []
    assert api.delete(f"/webhooks/{sub['id']}", key=KEY_B).status == 404
    assert api.delete(f"/webhooks/{sub['id']}").status == 204
    assert api.delete(f"/webhooks/{sub['id']}").status == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "https://intranet.example.com/h"}, "invalid_webhook_url"),
        ({"url": "http://example.com/h"}, "invalid_webhook_url"),
        ({"url": "https://example.com/h", "events": ["job.exploded"]}, "invalid_events"),
        ({"url": "https://example.com/h", "events": []}, "invalid_events"),
    ],
)
def test_bad_subscriptions_are_400(api: Api, body: dict[str, Any], code: str) -> None:
    resp = subscribe(api, body)
    assert (resp.status, resp.error_code) == (400, code)


def test_job_events_are_delivered_signed_and_retried_until_accepted(api: Api, stack: Stack) -> None:
    sub = subscribe(api, {"url": "https://hooks.example.org/all"}).json
    job_id = api.submit(cat_jpeg(), webhook_url="https://example.com/mine")
    classify_all(api, stack)
    [published] = notify_all(api, stack)
    assert published["attributes"]["tenant"]["Value"] == "a"
    stack.sender.answers = [DeliveryResult(503, "refused"), DeliveryResult(None, "timed out")]

    deliver_all(api, stack)

    posts = stack.sender.posts
    assert (
        sorted(url for url, _, _ in posts)
        == ["https://example.com/mine"] * 2 + ["https://hooks.example.org/all"] * 2
    )
    secrets = {
        "https://example.com/mine": api.get("/account").json["webhook_signing_secret"],
        "https://hooks.example.org/all": sub["secret"],
    }
    for url, body, sent in posts:
        verify_delivery(secrets[url], body, sent)  # Standard Webhooks' and Stripe's verifiers
        payload = json.loads(body)
        assert payload["type"] == "job.succeeded"
        assert payload["job"]["job_id"] == job_id
        assert set(payload) == {"id", "type", "created_at", "job"}
    assert sorted(sent["X-Delivery-Attempt"] for _, _, sent in posts) == ["1", "1", "2", "2"]
    # one webhook-id per event and endpoint, the same on the retry
    ids = {url: {sent["webhook-id"] for u, _, sent in posts if u == url} for url in secrets}
    assert all(len(found) == 1 for found in ids.values())
    assert len({next(iter(found)) for found in ids.values()}) == 2
    shown = {w["target"]: w for w in api.job(job_id)["webhooks"]}
    assert {t: (w["state"], w["attempts"], w["last_status"]) for t, w in shown.items()} == {
        "job": ("delivered", 2, 200),
        sub["id"]: ("delivered", 2, 200),
    }


def test_a_delivered_webhook_body_is_a_job_event_of_the_job_as_get_shows_it(
    api: Api, stack: Stack
) -> None:
    # GIVEN a finished job with a webhook, its event delivered
    job_id = api.submit(cat_jpeg(), webhook_url="https://example.com/hook")
    classify_all(api, stack)
    notify_all(api, stack)
    deliver_all(api, stack)
    [(_, body, headers)] = stack.sender.posts

    # WHEN the receiver reads the body
    event = JobEvent.model_validate_json(body)

    # THEN it is a JobEvent whose job is GET /jobs/{id} without the image URL and deliveries
    assert (event.type, headers["X-Event-Type"], headers["X-Event-Id"]) == (
        "job.succeeded",
        "job.succeeded",
        event.id,
    )
    shown = api.job(job_id)
    assert set(shown) - set(json.loads(body)["job"]) == {"image_url", "webhooks"}
    assert json.loads(body)["job"] == {
        k: v for k, v in shown.items() if k not in ("image_url", "webhooks")
    }
    assert event.job.model_dump(mode="json") == json.loads(body)["job"]


def test_a_failed_attempt_records_when_the_next_one_is_due(api: Api, stack: Stack) -> None:
    # GIVEN deliveries retried after a 60 s base backoff, and a receiver that answers 503
    settings = stack.settings.model_copy(update={"webhook_base_delay_s": 60})
    adapters = stack.services.adapters
    stack.install(
        deliveries=Deliverer(
            settings=settings,
            webhooks=adapters.webhooks,
            deliveries=adapters.deliveries,
            queue=adapters.webhooks_queue,
            sender=stack.sender,
            delivery_log=adapters.delivery_log,
            rng=random.Random(7),
        )
    )
    expected_delay = backoff_s(1, base_s=60, rng=random.Random(7))
    job_id = api.submit(cat_jpeg(), webhook_url="https://example.com/busy")
    classify_all(api, stack)
    notify_all(api, stack)
    stack.sender.answers = [DeliveryResult(503, "busy")]

    # WHEN the first attempt is made
    before = datetime.now(UTC)
    event = stack.receive(stack.resources.webhooks_queue_url)
    assert api.invoke("deliver_webhooks", event) == NOTHING_FAILED
    after = datetime.now(UTC)

    # THEN the delivery says it is retrying, due about one backoff from now (an ISO-8601 UTC time)
    [shown] = api.job(job_id)["webhooks"]
    assert (shown["state"], shown["attempts"], shown["last_status"]) == ("retrying", 1, 503)
    due = datetime.fromisoformat(shown["next_attempt_at"])
    assert due.utcoffset() == timedelta(0)
    assert 30 <= expected_delay <= 60
    slack = timedelta(seconds=1)  # the time is written to the second
    assert before + timedelta(seconds=expected_delay) - slack <= due
    assert due <= after + timedelta(seconds=expected_delay)
    # and the next attempt waits on the queue until then, not in a Lambda
    assert stack.receive(stack.resources.webhooks_queue_url)["Records"] == []


def test_a_repeated_job_event_sends_no_webhook_twice(api: Api, stack: Stack) -> None:
    api.submit(cat_jpeg(), webhook_url="https://example.com/once")
    classify_all(api, stack)
    event = stack.receive(stack.resources.notify_queue_url)
    assert api.invoke("notify", event) == NOTHING_FAILED
    deliver_all(api, stack)
    assert [url for url, _, _ in stack.sender.posts] == ["https://example.com/once"]

    # The same event again: a redelivered job message republishes it, and SNS may repeat it.
    assert api.invoke("notify", event) == NOTHING_FAILED

    assert stack.receive(stack.resources.webhooks_queue_url)["Records"] == []
    assert len(stack.sender.posts) == 1


def test_delivery_gives_up_after_the_limit_and_says_so(api: Api, stack: Stack) -> None:
    job_id = api.submit(cat_jpeg(), webhook_url="https://example.com/down")
    classify_all(api, stack)
    notify_all(api, stack)
    limit = stack.settings.webhook_max_attempts
    stack.sender.answers = [DeliveryResult(500, "refused")] * (limit + 5)

    deliver_all(api, stack)

    assert len(stack.sender.posts) == limit
    [shown] = api.job(job_id)["webhooks"]
    assert (shown["state"], shown["attempts"], shown["last_status"]) == ("failed", limit, 500)
    assert shown["next_attempt_at"] is None


def tenant_queries(stack: Stack) -> list[str]:
    """The partition of every Query of the tenants table the stack's client makes from now on."""
    seen: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == stack.settings.tenants_table:
            seen.append(params["ExpressionAttributeValues"][":pk"]["S"])

    stack.clients.dynamodb.meta.events.register("before-parameter-build.dynamodb.Query", record)
    return seen


def test_notify_reads_subscriptions_once_a_batch_and_skips_what_is_not_an_event(
    api: Api, stack: Stack
) -> None:
    # GIVEN three events of tenant "a" as the topic delivers them (raw, tenant as an attribute)
    for _ in range(3):
        api.submit(cat_jpeg())
    classify_all(api, stack)
    records = stack.receive(stack.resources.notify_queue_url)["Records"]
    assert len(records) == 3
    # and the first again in an SNS envelope (a subscription without raw delivery) for "b"
    envelope = {"Message": records[0]["body"], "MessageAttributes": {"tenant": {"Value": "b"}}}
    event = sqs_event(
        *records,
        sqs_record(json.dumps(envelope), message_id="enveloped"),
        sqs_record("not json", message_id="junk"),
        sqs_record('{"job": {}}', message_id="junk2", attributes={"tenant": "a"}),
    )
    lookups = tenant_queries(stack)

    # WHEN the notify function handles the batch
    result = api.invoke("notify", event)

    # THEN what is not an event is dropped, not retried forever
    assert result == NOTHING_FAILED
    # and three events of one tenant cost one lookup; the enveloped event's tenant one more
    assert lookups == ["TENANT#a", "TENANT#b"]


# --- deletion ---------------------------------------------------------------------------------


def test_delete_removes_the_record_and_the_image_and_only_for_the_owner(
    api: Api, stack: Stack
) -> None:
    job_id = api.submit(cat_jpeg())
    key = f"images/a/{job_id}"
    s3 = stack.clients.s3

    assert api.delete(f"/jobs/{job_id}", key=KEY_B).status == 404
    assert s3.get_object(Bucket=stack.settings.bucket, Key=key)["ContentLength"] > 0

    resp = api.delete(f"/jobs/{job_id}")

    assert (resp.status, resp.body) == (204, b"")
    assert api.get(f"/jobs/{job_id}").status == 404
    assert api.delete(f"/jobs/{job_id}").status == 404
    assert s3.list_objects_v2(Bucket=stack.settings.bucket, Prefix=key)["KeyCount"] == 0
    api.classify_queued()  # its queued message: a no-op
    assert api.get(f"/jobs/{job_id}").status == 404


def test_delete_of_a_job_with_webhook_deliveries_removes_them_too(api: Api, stack: Stack) -> None:
    # GIVEN a finished job whose webhook was delivered
    job_id = api.submit(cat_jpeg(), webhook_url="https://example.com/hook")
    classify_all(api, stack)
    notify_all(api, stack)
    deliver_all(api, stack)
    assert [w["state"] for w in api.job(job_id)["webhooks"]] == ["delivered"]

    # WHEN it is deleted
    assert api.delete(f"/jobs/{job_id}").status == 204

    # THEN no delivery record of it is left in the tenants table
    left = stack.clients.dynamodb.query(
        TableName=stack.settings.tenants_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}},
    )
    assert left["Items"] == []


def test_account_shows_a_stable_signing_secret_per_tenant(api: Api) -> None:
    first = api.get("/account").json
    again = api.get("/account").json
    other = api.get("/account", key=KEY_B).json
    assert first == again
    assert first["tenant"] == "a"
    assert other["webhook_signing_secret"] != first["webhook_signing_secret"]
