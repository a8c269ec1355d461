"""LocalStack tests run only when a LocalStack answers; each gets resource names of its own."""

from __future__ import annotations

import contextlib
import os
import uuid

import pytest
from botocore.exceptions import ClientError

from chalicelib.aws import AwsClients
from chalicelib.settings import Settings
from tests.localstack.probe import Probe, localstack_url, probe


@pytest.fixture(scope="session")
def localstack() -> Probe:
    """The LocalStack at ``LOCALSTACK_HOST`` (default localhost:4566), or a skip saying why not."""
    found = probe(localstack_url(os.environ))
    if not found.ready:
        pytest.skip(f"LocalStack tests need LocalStack with s3, sqs, dynamodb, sns: {found.reason}")
    return found


@pytest.fixture
def names() -> dict[str, str]:
    """Fresh resource names, so a run never touches what else lives in that LocalStack."""
    suffix = uuid.uuid4().hex[:10]
    return {
        "IMAGES_BUCKET": f"imgcls-test-{suffix}",
        "JOBS_TABLE": f"imgcls-test-jobs-{suffix}",
        "JOBS_QUEUE": f"imgcls-test-jobs-{suffix}",
        "JOB_EVENTS_TOPIC": f"imgcls-test-events-{suffix}",
    }


def remove(clients: AwsClients, settings: Settings) -> None:
    """Delete what the bootstrap made for one test (best effort: the test's result stands)."""
    with contextlib.suppress(ClientError):
        for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket):
            for obj in page.get("Contents", []):
                clients.s3.delete_object(Bucket=settings.bucket, Key=obj["Key"])
        clients.s3.delete_bucket(Bucket=settings.bucket)
    for name in (settings.jobs_queue, f"{settings.jobs_queue}-dlq"):
        with contextlib.suppress(ClientError):
            url = clients.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            clients.sqs.delete_queue(QueueUrl=url)
    with contextlib.suppress(ClientError):
        clients.dynamodb.delete_table(TableName=settings.table)
    for topic in clients.sns.list_topics().get("Topics", []):
        if topic["TopicArn"].endswith(f":{settings.topic_name}"):
            clients.sns.delete_topic(TopicArn=topic["TopicArn"])
