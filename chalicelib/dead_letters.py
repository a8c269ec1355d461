"""Dead letters: jobs-queue messages SQS gave up on end their job FAILED (``retries_exhausted``).

A dead letter from before a retry leaves the retried run alone (generation check); one whose job
already finished publishes its event again, as any late message does.
"""

from __future__ import annotations

import logging

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import telemetry
from chalicelib.classify import settle
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRepository, is_job_id
from chalicelib.queues import JobMessage

log = logging.getLogger(__name__)


class DeadLetters:
    """Settles the jobs of dead-lettered messages, one record at a time."""

    def __init__(self, *, repo: JobRepository, publisher: EventPublisher) -> None:
        self._repo = repo
        self._publisher = publisher

    def settle(self, record: SQSRecord) -> None:
        """Fail the message's job unless it finished or was retried; raise to have SQS retry."""
        message = JobMessage.parse(record.body)
        if message is None or not is_job_id(message.job_id):
            log.error("dead letter names no job", extra={"body": record.body[:200]})
            return
        receives = record.attributes.approximate_receive_count or "too many"
        failed = self._repo.fail(
            message.job_id,
            code="retries_exhausted",
            message=f"classification failed {receives} times; retry the job to try again",
            generation=message.generation,
        )
        telemetry.count("dead_letters")
        if failed.job is None:
            settle(failed.current, message=message, publisher=self._publisher)
            return
        log.warning("dead letter: job failed", extra={"job_id": message.job_id})
        telemetry.count("jobs_failed", code="retries_exhausted")
        self._publisher.publish(failed.job)
