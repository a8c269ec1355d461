"""The jobs queue: one small JSON message per job."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chalicelib.errors import TransientError

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class JobQueue:
    """Sends job ids to SQS; the URL is looked up once from the name unless configured."""

    def __init__(self, client: SQSClient, *, name: str, url: str | None = None) -> None:
        self._sqs = client
        self._name = name
        self._url = url

    @property
    def url(self) -> str:
        """The queue URL (looked up on first use)."""
        if self._url is None:
            self._url = self._sqs.get_queue_url(QueueName=self._name)["QueueUrl"]
        return self._url

    def send(self, job_id: str) -> None:
        """Queue one job for classification."""
        try:
            self._sqs.send_message(QueueUrl=self.url, MessageBody=json.dumps({"job_id": job_id}))
        except ClientError as exc:
            raise TransientError(f"SQS send failed: {exc}") from exc


def job_id_from_message(body: str) -> str | None:
    """The job id in a queue message body, or None for a message that is not ours."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    job_id = parsed.get("job_id") if isinstance(parsed, dict) else None
    return job_id if isinstance(job_id, str) else None
