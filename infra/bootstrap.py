"""Create the service's AWS resources on an emulator (moto's server, LocalStack); idempotent.

The same names and settings as the deployed stack: a private bucket whose uploads and bulk drops
notify the ingest queue, the jobs table with its owner index and the tenants table (both with
TTL), the jobs, ingest and webhooks queues with their dead-letter queues, and the job-events
topic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.aws import AwsClients
from chalicelib.image_store import INCOMING_PREFIX, UPLOADS_PREFIX
from chalicelib.job_store import OPEN_INDEX, OWNER_INDEX
from chalicelib.settings import INGEST_QUEUE_NAME, NOTIFY_QUEUE_NAME, Settings

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
    tenants_table: str
    ingest_queue_url: str
    webhooks_queue_url: str
    notify_queue_url: str

    def env(self) -> dict[str, str]:
        """Environment variables that point the app at these resources."""
        return {
            "IMAGES_BUCKET": self.bucket,
            "JOBS_TABLE": self.table,
            "JOBS_QUEUE_URL": self.jobs_queue_url,
            "JOB_EVENTS_TOPIC_ARN": self.topic_arn,
            "TENANTS_TABLE": self.tenants_table,
            "WEBHOOKS_QUEUE_URL": self.webhooks_queue_url,
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


def _bucket_events(aws: AwsClients, bucket: str, queue_arn: str) -> None:
    """Uploads and bulk drops announce themselves on the ingest queue; browsers may POST."""
    aws.s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": f"ingest-{prefix.rstrip('/')}",
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                }
                for prefix in (UPLOADS_PREFIX, INCOMING_PREFIX)
            ]
        },
    )
    aws.s3.put_bucket_cors(
        Bucket=bucket,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedMethods": ["POST", "GET"],
                    "AllowedOrigins": ["*"],
                    "AllowedHeaders": ["*"],
                    "MaxAgeSeconds": 3000,
                }
            ]
        },
    )


def _table(aws: AwsClients, name: str, *, keys: list[tuple[str, str]], **extra: Any) -> None:
    attributes = {attr for attr, _ in keys}
    for index in extra.get("GlobalSecondaryIndexes", []):
        attributes |= {k["AttributeName"] for k in index["KeySchema"]}
    try:
        aws.dynamodb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)
            ],
            KeySchema=[{"AttributeName": a, "KeyType": kind} for a, kind in keys],  # type: ignore[typeddict-item]
            **extra,
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        _add_missing_indexes(aws, name, extra.get("GlobalSecondaryIndexes", []))
    deadline = time.monotonic() + 60
    while not _active(aws.dynamodb.describe_table(TableName=name)["Table"]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} did not become ACTIVE")
        time.sleep(0.5)
    aws.dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def _active(table: Any) -> bool:
    indexes = table.get("GlobalSecondaryIndexes", [])
    return table["TableStatus"] == "ACTIVE" and all(
        i.get("IndexStatus", "ACTIVE") == "ACTIVE" for i in indexes
    )


def _add_missing_indexes(aws: AwsClients, name: str, wanted: list[Any]) -> None:
    """A table kept from an earlier version (a local DATA_DIR) gains the indexes added since."""
    have = {
        i["IndexName"]
        for i in aws.dynamodb.describe_table(TableName=name)["Table"].get(
            "GlobalSecondaryIndexes", []
        )
    }
    for index in wanted:
        if index["IndexName"] in have:
            continue
        aws.dynamodb.update_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": k["AttributeName"], "AttributeType": "S"}
                for k in index["KeySchema"]
            ],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )


def _tables(aws: AwsClients, settings: Settings) -> None:
    _table(
        aws,
        settings.table,
        keys=[("job_id", "HASH")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": OWNER_INDEX,
                "KeySchema": [
                    {"AttributeName": "owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": OPEN_INDEX,
                "KeySchema": [
                    {"AttributeName": "open_owner", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["pixels"]},
            },
        ],
    )
    _table(aws, settings.tenants_table, keys=[("pk", "HASH"), ("sk", "RANGE")])


def _queue(aws: AwsClients, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
    # set_queue_attributes also updates a queue that already exists with other settings.
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)  # type: ignore[arg-type]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def _subscribe_once(aws: AwsClients, topic_arn: str, queue_arn: str) -> None:
    """The topic delivers to the queue, raw (the event as the body, its attributes as message
    attributes: no envelope to build, sign and parse); a second bootstrap adds nothing."""
    subscriptions = aws.sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    for sub in subscriptions:
        if sub["Endpoint"] == queue_arn:
            aws.sns.set_subscription_attributes(
                SubscriptionArn=sub["SubscriptionArn"],
                AttributeName="RawMessageDelivery",
                AttributeValue="true",
            )
            return
    aws.sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )


def _queue_with_dlq(
    aws: AwsClients, name: str, *, visibility_timeout_s: int
) -> tuple[str, str, str]:
    """A queue whose messages move to ``<name>-dlq`` after ``MAX_RECEIVE_COUNT`` receives."""
    dlq_url, dlq_arn = _queue(aws, f"{name}-dlq", {"MessageRetentionPeriod": str(14 * 24 * 3600)})
    redrive: dict[str, Any] = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    url, arn = _queue(
        aws,
        name,
        {"VisibilityTimeout": str(visibility_timeout_s), "RedrivePolicy": json.dumps(redrive)},
    )
    return url, arn, dlq_url


def bootstrap(
    settings: Settings, *, visibility_timeout_s: int, aws: AwsClients | None = None
) -> Resources:
    """Create (or update) every resource and return where they are."""
    aws = aws or AwsClients(settings)
    _bucket(aws, settings.bucket, settings.region)
    _tables(aws, settings)
    queue_url, queue_arn, dlq_url = _queue_with_dlq(
        aws, settings.jobs_queue, visibility_timeout_s=visibility_timeout_s
    )
    ingest_url, ingest_arn, _ = _queue_with_dlq(
        aws, INGEST_QUEUE_NAME, visibility_timeout_s=visibility_timeout_s
    )
    webhooks_url, _, _ = _queue_with_dlq(
        aws, settings.webhooks_queue, visibility_timeout_s=visibility_timeout_s
    )
    _bucket_events(aws, settings.bucket, ingest_arn)
    topic_arn = aws.sns.create_topic(Name=settings.topic_name)["TopicArn"]
    notify_url, notify_arn, _ = _queue_with_dlq(
        aws, NOTIFY_QUEUE_NAME, visibility_timeout_s=visibility_timeout_s
    )
    _subscribe_once(aws, topic_arn, notify_arn)
    return Resources(
        bucket=settings.bucket,
        table=settings.table,
        jobs_queue_url=queue_url,
        jobs_queue_arn=queue_arn,
        dlq_url=dlq_url,
        topic_arn=topic_arn,
        tenants_table=settings.tenants_table,
        ingest_queue_url=ingest_url,
        webhooks_queue_url=webhooks_url,
        notify_queue_url=notify_url,
    )
