"""SQS queues: the jobs queue (one message per job and generation) and others."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.errors import ServiceUnavailable, TransientError
from chalicelib.job_store import JobRecord, JobRepository

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_DELAY_S = 900  # SQS's longest DelaySeconds


@dataclass(frozen=True)
class JobMessage:
    """What a jobs-queue message says: which job, and which run of it (a retry starts a new
    generation). Nothing else: the job's state is what its record says when it starts."""

    job_id: str
    generation: int = 0

    def to_body(self) -> str:
        """The message body."""
        return json.dumps({"job_id": self.job_id, "generation": self.generation})

    @classmethod
    def parse(cls, body: str) -> JobMessage | None:
        """The message in ``body``, or None for a body that is not one of ours."""
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        job_id, generation = parsed.get("job_id"), parsed.get("generation", 0)
        if not isinstance(job_id, str) or type(generation) is not int or generation < 0:
            return None
        return cls(job_id=job_id, generation=generation)


class Queue:
    """One SQS queue; the URL is looked up once from the name unless configured."""

    def __init__(self, client: SQSClient, *, name: str, url: str | None = None) -> None:
        self._sqs = client
        self._name = name
        self._url = url

    @property
    def url(self) -> str:
        """The queue URL (looked up on first use)."""
        if self._url is None:
            try:
                self._url = self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"]
            except ClientError as exc:
                raise TransientError(f"SQS queue {self._name} not found: {exc}") from exc
        return self._url

    def send(self, body: str, *, delay_s: int = 0, group: str | None = None) -> None:
        """Send one message, visible after ``delay_s`` seconds (at most 900); ``group`` is its
        ``MessageGroupId``, which a standard queue uses to be fair across groups."""
        request: dict[str, Any] = {
            "QueueUrl": self.url,
            "MessageBody": body,
            "DelaySeconds": min(MAX_DELAY_S, max(0, delay_s)),
        }
        if group:
            request["MessageGroupId"] = group
        try:
            self._sqs.send_message(**request)
        except ClientError as exc:
            raise TransientError(f"SQS send failed: {exc}") from exc

    def send_many(self, bodies: list[str]) -> None:
        """Send messages ten to a request (SendMessageBatch); raise if any is not accepted."""
        for start in range(0, len(bodies), 10):
            entries: list[Any] = [
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ]
            try:
                resp = self._sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
            except ClientError as exc:
                raise TransientError(f"SQS send failed: {exc}") from exc
            if resp.get("Failed"):
                raise TransientError(f"SQS refused {len(resp['Failed'])} messages")


class JobQueue:
    """The jobs queue: a standard queue, fair across tenants.

    Each message's ``MessageGroupId`` is its tenant. On a standard queue that makes SQS a fair
    queue: when one tenant holds a disproportionate share of the consumer's recent processing
    time (a burst of huge images, say), SQS hands out other tenants' messages first, so their
    wait stays short while the burst drains. No ordering is implied and nothing costs more.
    """

    def __init__(self, queue: Queue) -> None:
        self._queue = queue

    def send(self, job_id: str, generation: int, *, tenant: str) -> None:
        """Queue one run of a job for classification."""
        body = JobMessage(job_id=job_id, generation=generation).to_body()
        self._queue.send(body, group=tenant)


def enqueue(job: JobRecord, *, queue: JobQueue, repo: JobRepository) -> None:
    """Queue a recorded job; if the queue is down, the job ends FAILED (retryable), not lost."""
    try:
        queue.send(job.job_id, job.generation, tenant=job.owner)
    except TransientError as exc:
        repo.fail(job.job_id, code="enqueue_failed", message=str(exc))
        raise ServiceUnavailable(
            f"the job {job.job_id} was recorded but could not be queued; retry it with "
            f"POST /jobs/{job.job_id}/retry",
            code="queue_unavailable",
        ) from exc
