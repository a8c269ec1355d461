"""Create the service's AWS resources on an emulator (moto's server, LocalStack); idempotent.

The same names and settings as the deployed stack: a private bucket, the jobs table with its
owner index, the jobs queue with its dead-letter queue, and the job-events topic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import AwsClients
from chalicelib.jobs import OWNER_INDEX
from chalicelib.settings import Settings

MAX_RECEIVE_COUNT = 5


@dataclass(frozen=True)
class Resources:
    """What the handlers need to find the resources."""

    bucket: str
    table: str
    jobs_queue_url: str
    jobs_queue_arn: str
    dlq_url: str
    topic_arn: str

    def env(self) -> dict[str, str]:
        """Environment variables that point the app at these resources."""
        return {
            "IMAGES_BUCKET": self.bucket,
            "JOBS_TABLE": self.table,
            "JOBS_QUEUE_URL": self.jobs_queue_url,
            "JOB_EVENTS_TOPIC_ARN": self.topic_arn,
        }


def _bucket(aws: AwsClients, name: str, region: str) -> None:
    try:
        if region == "us-east-1":
            aws.s3.create_bucket(Bucket=name)
        else:
            aws.s3.create_bucket(
                Bucket=name,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    aws.s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )


def _table(aws: AwsClients, name: str) -> None:
    try:
        aws.dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "job_id", "AttributeType": "S"},
                {"AttributeName": "owner", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": OWNER_INDEX,
                    "KeySchema": [
                        {"AttributeName": "owner", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    deadline = time.monotonic() + 60
    while aws.dynamodb.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} did not become ACTIVE")
        time.sleep(0.5)


def _queue(aws: AwsClients, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
    # set_queue_attributes also updates a queue that already exists with other settings.
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def bootstrap(
    settings: Settings, *, visibility_timeout_s: int, aws: AwsClients | None = None
) -> Resources:
    """Create (or update) every resource and return where they are."""
    aws = aws or AwsClients(settings)
    _bucket(aws, settings.bucket, settings.region)
    _table(aws, settings.table)
    dlq_url, dlq_arn = _queue(
        aws, f"{settings.jobs_queue}-dlq", {"MessageRetentionPeriod": str(14 * 24 * 3600)}
    )
    redrive: dict[str, Any] = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    queue_url, queue_arn = _queue(
        aws,
        settings.jobs_queue,
        {
            "VisibilityTimeout": str(visibility_timeout_s),
            "RedrivePolicy": json.dumps(redrive),
        },
    )
    topic_arn = aws.sns.create_topic(Name=settings.topic_name)["TopicArn"]
    return Resources(
        bucket=settings.bucket,
        table=settings.table,
        jobs_queue_url=queue_url,
        jobs_queue_arn=queue_arn,
        dlq_url=dlq_url,
        topic_arn=topic_arn,
    )
