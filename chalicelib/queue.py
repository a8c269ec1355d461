"""SQS queues: the jobs queue (one JSON message per job and generation) and others."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chalicelib.errors import TransientError
from chalicelib.jobs import Job

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

MAX_DELAY_S = 900  # SQS's longest DelaySeconds


@dataclass(frozen=True)
class JobMessage:
    """What a queue message says: which job, and which run of it (retries start a new one); and
    the job's record as it was queued, so the classifier can start it without reading it back.
    """

    job_id: str
    generation: int = 0
    queued: Job | None = None

    def to_body(self) -> str:
        """The message body."""
        doc: dict[str, Any] = {"job_id": self.job_id, "generation": self.generation}
        if self.queued is not None:
            doc["job"] = self.queued.to_item()
        return json.dumps(doc)

    @classmethod
    def parse(cls, body: str) -> JobMessage | None:
        """The message in ``body``, or None for a body that is not one of ours. A record that
        does not describe this job and generation is left out (the job is then read)."""
        try:
            parsed = json.loads(body)
        except ValueError:
            return None
        if not isinstance(parsed, dict):
            return None
        job_id, generation = parsed.get("job_id"), parsed.get("generation", 0)
        if not isinstance(job_id, str) or type(generation) is not int or generation < 0:
            return None
        queued = _record(parsed.get("job"))
        if queued is not None and (queued.job_id, queued.generation) != (job_id, generation):
            queued = None
        return cls(job_id=job_id, generation=generation, queued=queued)


def _record(item: Any) -> Job | None:
    if not isinstance(item, dict):
        return None
    try:
        return Job.from_item(item)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


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

    def send_body(self, body: str, *, delay_s: int = 0) -> None:
        """Send one message, visible after ``delay_s`` seconds (at most 900)."""
        try:
            self._sqs.send_message(
                QueueUrl=self.url, MessageBody=body, DelaySeconds=min(MAX_DELAY_S, max(0, delay_s))
            )
        except ClientError as exc:
            raise TransientError(f"SQS send failed: {exc}") from exc


class JobQueue(Queue):
    """The jobs queue."""

    def send(self, job: Job) -> None:
        """Queue one job for classification, its record with it."""
        self.send_body(
            JobMessage(job_id=job.job_id, generation=job.generation, queued=job).to_body()
        )
