"""Job events on the SNS topic, with attributes subscribers can filter on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.errors import TransientError
from chalicelib.jobs import Job, JobStatus

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

PUBLISH_BATCH = 10  # SNS PublishBatch takes at most ten entries


def event_type(job: Job) -> str:
    """``job.succeeded`` or ``job.failed`` for a terminal job."""
    return "job.succeeded" if job.status is JobStatus.SUCCEEDED else "job.failed"


def job_event(job: Job) -> dict[str, Any]:
    """The event body: ``{id, type, created_at, job}``."""
    return {
        # Deterministic: a re-published event keeps its id, so receivers can deduplicate.
        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{job.job_id}/{job.status}/{job.updated_at}").hex,
        "type": event_type(job),
        # When the job reached this state, not when the event was sent: a re-published event is
        # the same event, so deliveries recorded for it are recognised.
        "created_at": job.updated_at,
        "job": job.to_api(),
    }


class EventPublisher:
    """Publishes terminal job events; the topic ARN is resolved once when not configured."""

    def __init__(self, client: SNSClient, *, topic_arn: str | None, topic_name: str) -> None:
        self._sns = client
        self._arn = topic_arn
        self._name = topic_name

    @property
    def topic_arn(self) -> str:
        """The topic ARN (CreateTopic is idempotent and returns the existing one)."""
        if self._arn is None:
            self._arn = self._sns.create_topic(Name=self._name)["TopicArn"]
        return self._arn

    def publish(self, job: Job) -> None:
        """Publish the job's terminal event with ``type`` and ``tenant`` message attributes."""
        event = job_event(job)
        try:
            self._sns.publish(
                TopicArn=self.topic_arn,
                Message=json.dumps(event),
                MessageAttributes=_attributes(event, job),
            )
        except ClientError as exc:
            raise TransientError(f"SNS publish failed: {exc}") from exc

    def publish_many(self, jobs: Sequence[Job]) -> set[str]:
        """Publish the jobs' events ten to a request (SNS PublishBatch), each exactly as
        ``publish`` would; return the ids of the jobs whose event SNS did not accept.

        Raises ``TransientError`` when a request fails as a whole.
        """
        unsent: set[str] = set()
        for start in range(0, len(jobs), PUBLISH_BATCH):
            chunk = jobs[start : start + PUBLISH_BATCH]
            entries: list[Any] = []
            for job in chunk:
                event = job_event(job)
                entries.append(
                    {
                        "Id": job.job_id,
                        "Message": json.dumps(event),
                        "MessageAttributes": _attributes(event, job),
                    }
                )
            try:
                resp = self._sns.publish_batch(
                    TopicArn=self.topic_arn, PublishBatchRequestEntries=entries
                )
            except ClientError as exc:
                raise TransientError(f"SNS publish failed: {exc}") from exc
            accepted = {entry["Id"] for entry in resp.get("Successful", [])}
            unsent.update(job.job_id for job in chunk if job.job_id not in accepted)
        return unsent


def _attributes(event: dict[str, Any], job: Job) -> dict[str, Any]:
    return {
        "type": {"DataType": "String", "StringValue": event["type"]},
        "tenant": {"DataType": "String", "StringValue": job.owner},
    }
