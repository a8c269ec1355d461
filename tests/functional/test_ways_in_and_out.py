"""Batches, presigned uploads, bulk drops into the bucket, job events, webhooks, deletion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from chalice.test import Client

from app import app
from chalicelib.deliveries import WebhookService
from chalicelib.queue import Queue
from chalicelib.tenants import TenantStore
from chalicelib.webhooks import DeliveryResult, verify
from infra.local import sqs_event
from tests.functional.conftest import KEY_A, KEY_B, Stack
from tests.photos import CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(app) as c:
        yield c


def headers(key: str = KEY_A, **extra: str) -> dict[str, str]:
    return {"x-api-key": key, **extra}


def multipart(files: list[tuple[str, bytes]], fields: dict[str, str] | None = None) -> bytes:
    out = b""
    for name, value in (fields or {}).items():
        out += f'--XyZ\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, data in files:
        out += (
            b"--XyZ\r\n"
            + f'Content-Disposition: form-data; name="images"; filename="{filename}"\r\n'.encode()
            + b"Content-Type: application/octet-stream\r\n\r\n"
            + data
            + b"\r\n"
        )
    return out + b"--XyZ--\r\n"


def post_batch(client: Client, files: list[tuple[str, bytes]], key: str = KEY_A) -> Any:
    return client.http.post(
        "/batches",
        headers=headers(key, **{"content-type": "multipart/form-data; boundary=XyZ"}),
        body=multipart(files, {"note": "holiday"}),
    )


def queue_event(stack: Stack, url: str) -> dict[str, Any]:
    resp = stack.clients.sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )
    return sqs_event(list(resp.get("Messages", [])), queue_arn="arn:q", region="us-east-1")  # type: ignore[arg-type]


def classify_all(client: Client, stack: Stack) -> None:
    while (event := stack.receive_jobs_event())["Records"]:
        assert client.lambda_.invoke("classify", event).payload == {"batchItemFailures": []}


def job(client: Client, job_id: str, key: str = KEY_A) -> Any:
    return client.http.get(f"/jobs/{job_id}", headers=headers(key))


# --- batches ---------------------------------------------------------------------------------


def test_batch_makes_a_job_per_good_file_and_reports_the_bad_one(
    client: Client, stack: Stack
) -> None:
    resp = post_batch(
        client,
        [("cat.jpg", cat_jpeg()), ("notes.txt", b"not an image"), ("cup.png", COFFEE.read_bytes())],
    )

    assert resp.status_code == 202, resp.body
    body = resp.json_body
    assert len(body["job_ids"]) == 2
    assert [(r["index"], r["filename"], r["error"]["code"]) for r in body["rejected"]] == [
        (1, "notes.txt", "unsupported_image")
    ]
    assert resp.headers["Location"] == body["status_url"] == f"/batches/{body['batch_id']}"
    waiting = client.http.get(body["status_url"], headers=headers()).json_body
    assert waiting["status"] == "waiting"
    assert waiting["progress"] == {
        "total": 2,
        "pending": 2,
        "processing": 0,
        "succeeded": 0,
        "failed": 0,
    }

    classify_all(client, stack)

    done = client.http.get(body["status_url"], headers=headers()).json_body
    assert done["status"] == "completed"
    assert done["progress"]["succeeded"] == 2
    by_name = {j["filename"]: j for j in done["jobs"]}
    assert by_name["cat.jpg"]["predictions"][0]["class_id"] in CAT_CLASSES
    assert by_name["cup.png"]["predictions"][0]["class_id"] == ESPRESSO
    assert {j["batch_id"] for j in done["jobs"]} == {body["batch_id"]}


def test_a_batch_with_an_undecodable_file_completes_with_errors(
    client: Client, stack: Stack
) -> None:
    body = post_batch(client, [("ok.jpg", cat_jpeg()), ("cut.jpg", cat_jpeg()[:3000])]).json_body
    classify_all(client, stack)
    done = client.http.get(body["status_url"], headers=headers()).json_body
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
    client: Client, stack: Stack, files: list[tuple[str, bytes]], code: str
) -> None:
    resp = post_batch(client, files)
    assert resp.status_code == 400
    assert resp.json_body["error"]["code"] == code
    assert stack.receive_jobs_event()["Records"] == []


def test_another_tenants_batch_is_404(client: Client) -> None:
    body = post_batch(client, [("cat.jpg", cat_jpeg())]).json_body
    assert client.http.get(body["status_url"], headers=headers(KEY_B)).status_code == 404
    assert client.http.get("/batches/" + "0" * 32, headers=headers()).status_code == 404
    assert client.http.get("/batches/junk", headers=headers()).status_code == 404


# --- presigned uploads and bulk drops ------------------------------------------------------------


def upload(client: Client, data: bytes, content_type: str = "image/jpeg") -> dict[str, Any]:
    resp = client.http.post(
        "/uploads",
        headers=headers(**{"content-type": "application/json"}),
        body=json.dumps({"filename": "../My Photo.jpg", "content_type": content_type}),
    )
    assert resp.status_code == 201, resp.body
    form = resp.json_body
    sent = requests.post(
        form["upload"]["url"],
        data=form["upload"]["fields"],
        files={"file": ("p", data, content_type)},
        timeout=30,
    )
    assert sent.status_code in (200, 201, 204), sent.text
    return dict(form)


def test_presigned_upload_becomes_a_job_when_s3_says_it_arrived(
    client: Client, stack: Stack
) -> None:
    form = upload(client, cat_jpeg())
    job_id = form["job_id"]
    fields = form["upload"]["fields"]
    assert fields["key"] == f"uploads/a/{job_id}/My_Photo.jpg"
    assert job(client, job_id).status_code == 404  # the S3 event, not the client, makes the job

    event = queue_event(stack, stack.resources.ingest_queue_url)
    assert client.lambda_.invoke("ingest", event).payload == {"batchItemFailures": []}
    client.lambda_.invoke("ingest", event)  # S3 and SQS deliver at least once

    pending = job(client, job_id).json_body
    assert (pending["status"], pending["source"], pending["filename"]) == (
        "PENDING",
        "upload",
        "My_Photo.jpg",
    )
    listed = client.http.get("/jobs", headers=headers()).json_body["jobs"]
    assert [j["job_id"] for j in listed] == [job_id]  # one job, however often S3 told us
    classify_all(client, stack)  # a still-PENDING job is queued again: that copy is a no-op
    done = job(client, job_id).json_body
    assert done["predictions"][0]["class_id"] in CAT_CLASSES
    assert done["attempts"] == 1


def test_upload_of_something_that_is_not_an_image_ends_failed_with_the_reason(
    client: Client, stack: Stack
) -> None:
    job_id = upload(client, b"%PDF-1.4 not really an image", "image/png")["job_id"]
    client.lambda_.invoke("ingest", queue_event(stack, stack.resources.ingest_queue_url))
    failed = job(client, job_id).json_body
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
def test_bad_upload_requests_are_4xx(client: Client, body: Any, status: int, code: str) -> None:
    resp = client.http.post(
        "/uploads", headers=headers(**{"content-type": "application/json"}), body=json.dumps(body)
    )
    assert (resp.status_code, resp.json_body["error"]["code"]) == (status, code)


def test_bulk_drop_makes_one_job_per_object_version_and_writes_the_result_beside_it(
    client: Client, stack: Stack
) -> None:
    s3, bucket = stack.clients.s3, stack.settings.bucket
    s3.put_object(Bucket=bucket, Key="incoming/a/holiday/cat 1.jpg", Body=cat_jpeg())
    event = queue_event(stack, stack.resources.ingest_queue_url)
    client.lambda_.invoke("ingest", event)
    client.lambda_.invoke("ingest", event)  # a repeated event

    listed = client.http.get("/jobs", headers=headers()).json_body["jobs"]
    assert [(j["source"], j["filename"]) for j in listed] == [("s3", "holiday/cat 1.jpg")]
    classify_all(client, stack)
    assert len(notify_all(client, stack)) == 1

    result = json.loads(
        s3.get_object(Bucket=bucket, Key="results/a/holiday/cat 1.jpg.json")["Body"].read()
    )
    assert result["job_id"] == listed[0]["job_id"]
    assert result["status"] == "SUCCEEDED"
    assert result["predictions"][0]["class_id"] in CAT_CLASSES

    s3.put_object(Bucket=bucket, Key="incoming/a/holiday/cat 1.jpg", Body=cat_jpeg(quality=70))
    client.lambda_.invoke("ingest", queue_event(stack, stack.resources.ingest_queue_url))
    assert len(client.http.get("/jobs", headers=headers()).json_body["jobs"]) == 2  # new version


# --- job events and webhooks ---------------------------------------------------------------------


def notify_all(client: Client, stack: Stack) -> list[dict[str, Any]]:
    """Hand the notify function what the topic delivered to its queue; the events published."""
    while (event := queue_event(stack, stack.resources.notify_queue_url))["Records"]:
        assert client.lambda_.invoke("notify", event).payload == {"batchItemFailures": []}
    return stack.published_events()


def test_subscriptions_are_per_tenant_and_show_their_secret_once(client: Client) -> None:
    json_headers = headers(**{"content-type": "application/json"})
    made = client.http.post(
        "/webhooks",
        headers=json_headers,
        body=json.dumps({"url": "https://example.com/h", "events": ["job.failed"]}),
    )
    assert made.status_code == 201
    sub = made.json_body
    assert sub["secret"].startswith("whsec_")
    assert sub["events"] == ["job.failed"]
    listed = client.http.get("/webhooks", headers=headers()).json_body["webhooks"]
    assert listed == [{k: v for k, v in sub.items() if k != "secret"}]
    assert client.http.get("/webhooks", headers=headers(KEY_B)).json_body["webhooks"] == []
    assert client.http.delete(f"/webhooks/{sub['id']}", headers=headers(KEY_B)).status_code == 404
    assert client.http.delete(f"/webhooks/{sub['id']}", headers=headers()).status_code == 204
    assert client.http.delete(f"/webhooks/{sub['id']}", headers=headers()).status_code == 404


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": "https://intranet.example.com/h"}, "invalid_webhook_url"),
        ({"url": "http://example.com/h"}, "invalid_webhook_url"),
        ({"url": "https://example.com/h", "events": ["job.exploded"]}, "invalid_events"),
        ({"url": "https://example.com/h", "events": []}, "invalid_events"),
    ],
)
def test_bad_subscriptions_are_400(client: Client, body: dict[str, Any], code: str) -> None:
    resp = client.http.post(
        "/webhooks", headers=headers(**{"content-type": "application/json"}), body=json.dumps(body)
    )
    assert (resp.status_code, resp.json_body["error"]["code"]) == (400, code)


def test_job_events_are_delivered_signed_and_retried_until_accepted(
    client: Client, stack: Stack
) -> None:
    sub = client.http.post(
        "/webhooks",
        headers=headers(**{"content-type": "application/json"}),
        body=json.dumps({"url": "https://hooks.example.org/all"}),
    ).json_body
    job_id = client.http.post(
        "/jobs?webhook_url=https://example.com/mine",
        headers=headers(**{"content-type": "image/jpeg"}),
        body=cat_jpeg(),
    ).json_body["job_id"]
    classify_all(client, stack)
    [published] = notify_all(client, stack)
    assert published["attributes"]["tenant"]["Value"] == "a"
    stack.sender.answers = [DeliveryResult(503, "refused"), DeliveryResult(None, "timed out")]

    rounds = 0
    while (event := queue_event(stack, stack.resources.webhooks_queue_url))["Records"]:
        assert client.lambda_.invoke("deliver_webhooks", event).payload == {"batchItemFailures": []}
        rounds += 1
        assert rounds < 10

    posts = stack.sender.posts
    assert (
        sorted(url for url, _, _ in posts)
        == ["https://example.com/mine"] * 2 + ["https://hooks.example.org/all"] * 2
    )
    secrets = {
        "https://example.com/mine": client.http.get("/account", headers=headers()).json_body[
            "webhook_signing_secret"
        ],
        "https://hooks.example.org/all": sub["secret"],
    }
    for url, body, sent in posts:
        assert verify(secrets[url], body, sent["X-Signature"])
        payload = json.loads(body)
        assert payload["type"] == "job.succeeded"
        assert payload["job"]["job_id"] == job_id
        assert set(payload) == {"id", "type", "created_at", "job"}
    assert sorted(sent["X-Delivery-Attempt"] for _, _, sent in posts) == ["1", "1", "2", "2"]
    shown = {w["target"]: w for w in job(client, job_id).json_body["webhooks"]}
    assert {t: (w["state"], w["attempts"], w["last_status"]) for t, w in shown.items()} == {
        "job": ("delivered", 2, 200),
        sub["id"]: ("delivered", 2, 200),
    }


def test_a_repeated_job_event_sends_no_webhook_twice(client: Client, stack: Stack) -> None:
    client.http.post(
        "/jobs?webhook_url=https://example.com/once",
        headers=headers(**{"content-type": "image/jpeg"}),
        body=cat_jpeg(),
    )
    classify_all(client, stack)
    event = queue_event(stack, stack.resources.notify_queue_url)
    assert client.lambda_.invoke("notify", event).payload == {"batchItemFailures": []}
    while (deliveries := queue_event(stack, stack.resources.webhooks_queue_url))["Records"]:
        client.lambda_.invoke("deliver_webhooks", deliveries)
    assert [url for url, _, _ in stack.sender.posts] == ["https://example.com/once"]

    # The same event again: a redelivered job message republishes it, and SNS may repeat it.
    assert client.lambda_.invoke("notify", event).payload == {"batchItemFailures": []}

    assert queue_event(stack, stack.resources.webhooks_queue_url)["Records"] == []
    assert len(stack.sender.posts) == 1


def test_delivery_gives_up_after_the_limit_and_says_so(client: Client, stack: Stack) -> None:
    job_id = client.http.post(
        "/jobs?webhook_url=https://example.com/down",
        headers=headers(**{"content-type": "image/jpeg"}),
        body=cat_jpeg(),
    ).json_body["job_id"]
    classify_all(client, stack)
    notify_all(client, stack)
    limit = stack.settings.webhook_max_attempts
    stack.sender.answers = [DeliveryResult(500, "refused")] * (limit + 5)

    while (event := queue_event(stack, stack.resources.webhooks_queue_url))["Records"]:
        client.lambda_.invoke("deliver_webhooks", event)

    assert len(stack.sender.posts) == limit
    [shown] = job(client, job_id).json_body["webhooks"]
    assert (shown["state"], shown["attempts"], shown["last_status"]) == ("failed", limit, 500)


# --- deletion ---------------------------------------------------------------------------------


def test_delete_removes_the_record_and_the_image_and_only_for_the_owner(
    client: Client, stack: Stack
) -> None:
    job_id = client.http.post(
        "/jobs", headers=headers(**{"content-type": "image/jpeg"}), body=cat_jpeg()
    ).json_body["job_id"]
    key = f"images/a/{job_id}"
    s3 = stack.clients.s3

    assert client.http.delete(f"/jobs/{job_id}", headers=headers(KEY_B)).status_code == 404
    assert s3.get_object(Bucket=stack.settings.bucket, Key=key)["ContentLength"] > 0

    resp = client.http.delete(f"/jobs/{job_id}", headers=headers())

    assert (resp.status_code, resp.body) == (204, b"")
    assert job(client, job_id).status_code == 404
    assert client.http.delete(f"/jobs/{job_id}", headers=headers()).status_code == 404
    assert s3.list_objects_v2(Bucket=stack.settings.bucket, Prefix=key)["KeyCount"] == 0
    client.lambda_.invoke("classify", stack.receive_jobs_event())  # its queued message: a no-op
    assert job(client, job_id).status_code == 404


def test_account_shows_a_stable_signing_secret_per_tenant(client: Client) -> None:
    first = client.http.get("/account", headers=headers()).json_body
    again = client.http.get("/account", headers=headers()).json_body
    other = client.http.get("/account", headers=headers(KEY_B)).json_body
    assert first == again
    assert first["tenant"] == "a"
    assert other["webhook_signing_secret"] != first["webhook_signing_secret"]


class CountingTenants(TenantStore):
    """The tenants table, counting subscription lookups."""

    lookups: list[str]

    def query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        self.lookups.append(pk)
        return super().query(pk, prefix)


def test_notify_reads_subscriptions_once_a_batch_and_skips_what_is_not_an_event(
    client: Client, stack: Stack
) -> None:
    for _ in range(3):
        client.http.post(
            "/jobs", headers=headers(**{"content-type": "image/jpeg"}), body=cat_jpeg()
        )
    classify_all(client, stack)
    records = queue_event(stack, stack.resources.notify_queue_url)["Records"]
    bodies: list[tuple[str, str, str | None]] = [
        (r["messageId"], r["body"], r["messageAttributes"]["tenant"]["stringValue"])
        for r in records
    ]
    # An event in an SNS envelope (a subscription without raw delivery) is read too.
    envelope = {"Message": records[0]["body"], "MessageAttributes": {"tenant": {"Value": "b"}}}
    bodies += [("enveloped", json.dumps(envelope), None)]
    bodies += [("junk", "not json", None), ("junk2", '{"job": {}}', "a")]
    tenants = CountingTenants(stack.clients.dynamodb, stack.settings.tenants_table)
    tenants.lookups = []
    webhooks = WebhookService(
        settings=stack.settings,
        tenants=tenants,
        store=stack.service.store,
        queue=Queue(stack.clients.sqs, name=stack.settings.webhooks_queue),
        sender=stack.sender,
    )

    assert webhooks.on_job_events(bodies) == []  # the junk one is dropped, not retried forever

    assert len(records) == 3
    # Three events of one tenant: one lookup; the enveloped event's tenant: one more.
    assert tenants.lookups == ["TENANT#a", "TENANT#b"]
