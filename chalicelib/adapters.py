"""The AWS adapters the use cases share, built once per container around lazy clients.

Light on purpose: the status function builds its services from here without importing numpy,
Pillow or ONNX Runtime.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.aws import QUICK, AwsClients
from chalicelib.batch_store import BatchStore
from chalicelib.delivery_store import DeliveryLog, DeliveryStore
from chalicelib.image_store import ImageStore
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRepository
from chalicelib.queues import JobQueue, Queue
from chalicelib.readiness import ReadinessProbe
from chalicelib.settings import Settings
from chalicelib.tenant_table import TenantTable
from chalicelib.webhook_store import WebhookStore


@dataclass(frozen=True)
class Adapters:
    """One of each AWS adapter, shared by the use cases."""

    repo: JobRepository
    images: ImageStore
    jobs_queue: JobQueue
    webhooks_queue: Queue
    publisher: EventPublisher
    tenants: TenantTable
    webhooks: WebhookStore
    deliveries: DeliveryStore
    delivery_log: DeliveryLog
    batches: BatchStore

    @classmethod
    def build(cls, settings: Settings, aws: AwsClients) -> Adapters:
        """The real adapters around lazily created clients."""
        tenants = TenantTable(aws.dynamodb, settings.tenants_table)
        jobs = Queue(aws.sqs, name=settings.jobs_queue, url=settings.jobs_queue_url)
        return cls(
            repo=JobRepository(aws.dynamodb, settings.table),
            images=ImageStore(aws.s3, settings.bucket),
            jobs_queue=JobQueue(jobs),
            webhooks_queue=Queue(
                aws.sqs, name=settings.webhooks_queue, url=settings.webhooks_queue_url
            ),
            publisher=EventPublisher(
                aws.sns, topic_arn=settings.topic_arn, topic_name=settings.topic_name
            ),
            tenants=tenants,
            webhooks=WebhookStore(tenants),
            deliveries=DeliveryStore(tenants),
            delivery_log=DeliveryLog(tenants),
            batches=BatchStore(tenants),
        )


def readiness_probe(settings: Settings) -> ReadinessProbe:
    """S3, DynamoDB and SQS checked with clients that try once and give up quickly."""
    aws = AwsClients(settings, config=QUICK)
    jobs = Queue(aws.sqs, name=settings.jobs_queue, url=settings.jobs_queue_url)
    return ReadinessProbe(
        {
            "s3": lambda: aws.s3.head_bucket(Bucket=settings.bucket),
            "dynamodb": lambda: aws.dynamodb.describe_table(TableName=settings.table),
            "sqs": lambda: aws.sqs.get_queue_attributes(
                QueueUrl=jobs.url, AttributeNames=["ApproximateNumberOfMessages"]
            ),
        }
    )
