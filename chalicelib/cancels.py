"""Cancel: a job that is not finished becomes CANCELED, and a ``job.canceled`` event goes out.

A job being classified is canceled all the same: the classifier writes its result on condition
that the job is still PROCESSING in the same generation, so that write is refused and the job
never becomes SUCCEEDED. A job still queued is acknowledged when its message comes (its start
is refused). Canceling again answers the CANCELED job and publishes its event again (same id):
a request whose event did not go out can simply be repeated.
"""

from __future__ import annotations

import logging

from chalicelib import telemetry
from chalicelib.batches import Batches
from chalicelib.contract import Batch, JobDetail, JobStatus
from chalicelib.errors import Conflict, NotFound, TransientError
from chalicelib.job_actions import JobActions
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRecord, JobRepository

log = logging.getLogger(__name__)


class Cancels:
    """Cancel a tenant's job, or every unfinished job of its batch."""

    def __init__(
        self,
        *,
        jobs: JobActions,
        repo: JobRepository,
        batches: Batches,
        publisher: EventPublisher,
    ) -> None:
        self._jobs = jobs
        self._repo = repo
        self._batches = batches
        self._publisher = publisher

    def cancel_job(self, *, owner: str, job_id: str) -> JobDetail:
        """PENDING/PROCESSING → CANCELED; 409 ``not_cancelable`` once SUCCEEDED or FAILED."""
        self._jobs.get(owner=owner, job_id=job_id)
        outcome = self._repo.cancel(job_id)
        job = outcome.job
        if job is None:
            current = outcome.current
            if current is None:
                raise NotFound(f"no job {job_id!r}", code="job_not_found")
            if current.status is not JobStatus.CANCELED:
                raise Conflict(
                    f"only PENDING or PROCESSING jobs can be canceled; this one is "
                    f"{current.status.value}",
                    code="not_cancelable",
                )
            job = current  # canceled before: answer it, and announce it again
        else:
            telemetry.count("jobs_canceled")
            log.info("job canceled", extra={"job_id": job_id, "tenant": owner})
        self._publisher.publish(job)
        return self._jobs.present(job)

    def cancel_batch(self, *, owner: str, batch_id: str) -> Batch:
        """Cancel the batch's unfinished jobs; its finished ones stay as they are."""
        record = self._batches.record(owner=owner, batch_id=batch_id)
        current = self._batches.jobs(record)
        after: list[JobRecord] = []
        for job in current:
            if job.status.terminal:
                after.append(job)
                continue
            outcome = self._repo.cancel(job.job_id)
            if outcome.job is not None:
                telemetry.count("jobs_canceled")
            changed = outcome.job or outcome.current
            if changed is not None:  # None: deleted meanwhile
                after.append(changed)
        # Every canceled job's event, those of an earlier cancel too: one that did not go out
        # then goes out now (receivers drop the ones they saw: same ids).
        canceled = [job for job in after if job.status is JobStatus.CANCELED]
        if canceled and self._publisher.publish_many(canceled):
            raise TransientError("SNS did not accept every job.canceled event")
        log.info("batch canceled", extra={"batch_id": batch_id, "jobs": len(canceled)})
        return self._batches.present(record, after)
