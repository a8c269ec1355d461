"""The service's journeys end to end against LocalStack: S3, SQS and SNS are LocalStack's, DynamoDB
is moto's, and the service is ``python -m infra.local`` reached over HTTP, its resources created
by its own bootstrap. Each journey is one a user or an integration takes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from chalicelib.aws import AwsClients
from chalicelib.image_store import image_key, results_key
from chalicelib.settings import Settings
from infra.bootstrap import MAX_RECEIVE_COUNT
from tests.localstack.conftest import KEY, TENANT, Lane, eventually
from tests.photos import CAT, CAT_CLASSES, COFFEE, ESPRESSO, cat_jpeg
from tests.runtime import Runtime, start_runtime

pytestmark = pytest.mark.localstack


def test_a_photo_through_the_api_is_classified_with_its_image_in_localstack(
    runtime: Runtime, aws: AwsClients, settings: Settings
) -> None:
    photo = CAT.read_bytes()

    job = runtime.wait_for(runtime.submit(photo, "image/png"), timeout=90)

    assert job["status"] == "SUCCEEDED", runtime.postmortem()
    assert job["predictions"][0]["class_id"] in CAT_CLASSES
    assert job["attempts"] == 1
    # The image is LocalStack's, and the job's presigned URL serves it from there.
    stored = aws.s3.get_object(Bucket=settings.bucket, Key=image_key(TENANT, job["job_id"]))
    assert stored["Body"].read() == photo
    assert job["image_url"].startswith(f"{runtime.emulator}/{settings.bucket}/")
    assert requests.get(job["image_url"], timeout=30).content == photo
    forged = job["image_url"].replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(forged, timeout=30).status_code == 403  # LocalStack checks signatures
    # The record is moto's: DynamoDB went where AWS_ENDPOINT_URL_DYNAMODB said.
    record = aws.dynamodb.get_item(TableName=settings.table, Key={"job_id": {"S": job["job_id"]}})
    assert record["Item"]["status"]["S"] == "SUCCEEDED"


def test_an_image_dropped_into_the_bucket_gets_its_results_file(
    runtime: Runtime, aws: AwsClients, settings: Settings
) -> None:
    path = "trip/day 1/cat.jpg"  # a space: S3 notifications carry the key URL-encoded
    aws.s3.put_object(Bucket=settings.bucket, Key=f"incoming/{TENANT}/{path}", Body=cat_jpeg())

    def result() -> dict[str, Any] | None:
        try:
            got = aws.s3.get_object(Bucket=settings.bucket, Key=results_key(TENANT, path))
        except aws.s3.exceptions.NoSuchKey:
            return None
        return dict(json.loads(got["Body"].read()))

    written = eventually(result, timeout=90, what=f"results/{TENANT}/{path}.json")

    assert written["status"] == "SUCCEEDED", written
    assert written["predictions"][0]["class_id"] in CAT_CLASSES
    assert runtime.get(f"/jobs/{written['job_id']}")["source"] == "s3"


@pytest.fixture
def subscribed_queue(aws: AwsClients, settings: Settings) -> Iterator[str]:
    """A fresh LocalStack queue subscribed to the job-events topic (envelope, not raw), as an
    integration would subscribe; removed afterwards."""
    name = f"integration-{uuid.uuid4().hex[:8]}"
    url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic_arn = aws.sns.create_topic(Name=settings.topic_name)["TopicArn"]  # the existing one
    sub = aws.sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"FilterPolicy": json.dumps({"type": ["job.succeeded"]})},
        ReturnSubscriptionArn=True,
    )
    yield url
    aws.sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    aws.sqs.delete_queue(QueueUrl=url)


def test_a_job_event_reaches_a_queue_subscribed_to_the_topic(
    runtime: Runtime, aws: AwsClients, subscribed_queue: str
) -> None:
    job_id = runtime.submit(COFFEE.read_bytes(), "image/png")

    def our_event() -> dict[str, Any] | None:
        got = aws.sqs.receive_message(
            QueueUrl=subscribed_queue, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in got.get("Messages", []):
            envelope = json.loads(message["Body"])
            if json.loads(envelope["Message"])["job"]["job_id"] == job_id:
                return dict(envelope)
        return None  # another test's job: the filter lets every success through

    envelope = eventually(our_event, timeout=90, what=f"the event of job {job_id}")

    assert envelope["Type"] == "Notification"
    assert envelope["MessageAttributes"]["type"]["Value"] == "job.succeeded"
    assert envelope["MessageAttributes"]["tenant"]["Value"] == TENANT
    event = json.loads(envelope["Message"])
    assert event["type"] == "job.succeeded"
    assert event["job"]["predictions"][0]["class_id"] == ESPRESSO


def test_a_presigned_upload_to_localstack_is_classified(
    runtime: Runtime, settings: Settings
) -> None:
    photo = cat_jpeg()
    form = runtime.http.post("/uploads", json={"filename": "cat.jpg", "content_type": "image/jpeg"})
    assert form.status_code == 201, form.text
    upload = form.json()["upload"]
    # Path-style: the endpoint is an address, so there is no bucket host name to resolve.
    assert upload["url"] == f"{runtime.emulator}/{settings.bucket}"

    sent = requests.post(  # the presigned S3 form, straight to LocalStack, not the API
        upload["url"],
        data=upload["fields"],
        files={"file": ("cat.jpg", photo, "image/jpeg")},
        timeout=60,
    )
    assert sent.status_code == 204, sent.text

    job = runtime.wait_for(form.json()["job_id"], timeout=90)
    assert job["status"] == "SUCCEEDED", job
    assert (job["source"], job["size_bytes"]) == ("upload", len(photo))
    assert job["predictions"][0]["class_id"] in CAT_CLASSES


@pytest.fixture
def unreadable_images(lane: Lane) -> Iterator[Runtime]:
    """A second runtime on resources of its own, whose classifier finds every image read
    failing transiently (``FAULT_RATE=1``, as S3 throttling would), with failed messages back
    after one second instead of five."""
    env = {**lane.env("dlq"), "FAULT_RATE": "1"}
    started = start_runtime(KEY, env=env, args=("--visibility-timeout", "1"))
    yield started
    started.stop()


def test_a_job_whose_image_never_reads_goes_through_the_dead_letter_queue_to_failed(
    unreadable_images: Runtime,
) -> None:
    job_id = unreadable_images.submit(CAT.read_bytes(), "image/png")

    job = unreadable_images.wait_for(job_id, timeout=120)

    assert job["status"] == "FAILED", job
    assert job["error"]["code"] == "retries_exhausted", job
    # Every receive SQS allowed was an attempt; LocalStack's redrive then handed it over.
    assert job["attempts"] == MAX_RECEIVE_COUNT, job


def test_localstack_host_alone_sends_the_service_to_localstack(lane: Lane) -> None:
    """The other way to name LocalStack: ``LOCALSTACK_HOST``, clients from localstack-client
    (DynamoDB still at moto, by its own endpoint variable)."""
    env = {k: v for k, v in lane.env("host").items() if k != "AWS_ENDPOINT_URL"}
    env["LOCALSTACK_HOST"] = lane.localstack.removeprefix("http://")
    started = start_runtime(KEY, env=env)
    try:
        job = started.wait_for(started.submit(CAT.read_bytes(), "image/png"), timeout=90)
    finally:
        output = started.stop()

    assert started.emulator == lane.localstack, output
    assert job["status"] == "SUCCEEDED", output
    assert job["predictions"][0]["class_id"] in CAT_CLASSES
    assert requests.get(job["image_url"], timeout=30).status_code == 200  # SigV4, checked
