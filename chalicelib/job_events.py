"""Job events on the SNS topic, with the attributes subscribers filter on (``type``, ``tenant``).

An event is ``JobEvent``: ``{id, type, created_at, job}``. Its id is derived from the job's state,
so an event published again (at-least-once) is the same event, and receivers can drop it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.contract import EventType, JobEvent, JobStatus
from chalicelib.errors import TransientError
from chalicelib.job_store import JobRecord

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

PUBLISH_BATCH = 10  # SNS PublishBatch takes at most ten entries
_TYPES: dict[JobStatus, EventType] = {
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELED: "job.canceled",
}


def job_event(job: JobRecord) -> JobEvent:
    """The event of a finished job."""
    return JobEvent(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"{job.job_id}/{job.status}/{job.updated_at}").hex,
        type=_TYPES.get(job.status, "job.failed"),
        # When the job reached this state, not when the event was sent: a re-published event is
        # the same event, so deliveries recorded for it are recognised.
        created_at=job.updated_at,
        job=job.view(),
    )


def _entry(job: JobRecord) -> dict[str, Any]:
    event = job_event(job)
    return {
        "Id": job.job_id,
        "Message": event.model_dump_json(),
        "MessageAttributes": {
            "type": {"DataType": "String", "StringValue": event.type},
            "tenant": {"DataType": "String", "StringValue": job.owner},
        },
    }


class EventPublisher:
    """Publishes finished jobs' events; the topic ARN is resolved once when not configured."""

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

    def publish(self, job: JobRecord) -> None:
        """Publish one job's event."""
        entry = _entry(job)
        try:
            self._sns.publish(
                TopicArn=self.topic_arn,
                Message=entry["Message"],
                MessageAttributes=entry["MessageAttributes"],
            )
        except ClientError as exc:
            raise TransientError(f"SNS publish failed: {exc}") from exc

    def publish_many(self, jobs: Sequence[JobRecord]) -> set[str]:
        """Publish the jobs' events ten to a request (SNS PublishBatch); the ids of the jobs
        whose event SNS did not accept. Raises ``TransientError`` when a request fails."""
        unsent: set[str] = set()
        for start in range(0, len(jobs), PUBLISH_BATCH):
            chunk = jobs[start : start + PUBLISH_BATCH]
            entries: list[Any] = [_entry(job) for job in chunk]
            try:
                resp = self._sns.publish_batch(
                    TopicArn=self.topic_arn, PublishBatchRequestEntries=entries
                )
            except ClientError as exc:
                raise TransientError(f"SNS publish failed: {exc}") from exc
            accepted = {entry["Id"] for entry in resp.get("Successful", [])}
            unsent.update(job.job_id for job in chunk if job.job_id not in accepted)
        return unsent
