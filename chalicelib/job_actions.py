"""Reading, listing, retrying and deleting a tenant's jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable

from chalicelib.contract import Delivery, JobDetail, JobPage, ListJobsQuery
from chalicelib.delivery_store import DeliveryStore
from chalicelib.errors import Conflict, NotFound
from chalicelib.image_store import ImageStore, results_key
from chalicelib.job_store import JobRecord, JobRepository, is_job_id
from chalicelib.queues import JobQueue, enqueue
from chalicelib.settings import Settings
from chalicelib.waiting import Pause, wait_until, young_for

log = logging.getLogger(__name__)


class JobActions:
    """What a tenant can do with its own jobs; another tenant's job is always 404."""

    def __init__(
        self,
        *,
        settings: Settings,
        repo: JobRepository,
        images: ImageStore,
        queue: JobQueue,
        deliveries: DeliveryStore,
        pause: Pause | None = None,
        forget: Callable[[JobRecord], None] | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._images = images
        self._queue = queue
        self._deliveries = deliveries
        self._pause = pause or Pause()
        self._forget = forget  # the answer cache's entry that points at a deleted job

    def get(self, *, owner: str, job_id: str) -> JobRecord:
        """The caller's job; 404 for malformed ids, unknown ids and other tenants' jobs."""
        job = self._repo.get(job_id) if is_job_id(job_id) else None
        if job is None or job.owner != owner:
            raise NotFound(f"no job {job_id!r}", code="job_not_found")
        return job

    def detail(
        self, *, owner: str, job_id: str, wait: float | None = None, known: JobRecord | None = None
    ) -> JobDetail:
        """The job with a short-lived URL of its image and the state of its webhooks; with
        ``wait``, once it is finished or after ``wait`` seconds, whichever comes first.
        ``known``: the caller's record of it, just written (not read again before the wait)."""
        job = known if known is not None else self.get(owner=owner, job_id=job_id)
        if wait and not job.status.terminal:
            job = wait_until(
                lambda: self._repo.get(job_id) or job,
                lambda current: current.status.terminal,
                first=job,
                seconds=wait,
                pause=self._pause,
                dense_s=young_for(job.created_at),
            )
        return self.present(job)

    def present(self, job: JobRecord, *, new: bool = False) -> JobDetail:
        """A job record as ``GET /jobs/{job_id}`` shows it (``new``: just made, so no webhook
        was attempted yet)."""
        url = self._images.presigned_url(job.s3_key, expires_in=self._settings.image_url_ttl_s)
        # Deliveries follow a job's events: a job that never finished has none to read.
        ever_finished = job.status.terminal or job.generation > 0
        # ... and a job whose record says none of its events went to a target has none either.
        look = ever_finished and not new and job.may_have_deliveries
        records = self._deliveries.for_job(job.job_id) if look else []
        deliveries = [Delivery.model_validate(record.model_dump()) for record in records]
        return JobDetail(**job.view().model_dump(), image_url=url, webhooks=deliveries)

    def list(self, *, owner: str, query: ListJobsQuery) -> JobPage:
        """A page of the caller's jobs, newest first."""
        jobs, token = self._repo.list_for_owner(
            owner, status=query.status, limit=query.limit, next_token=query.next_token
        )
        return JobPage(jobs=[job.view() for job in jobs], next_token=token)

    def retry(self, *, owner: str, job_id: str) -> JobRecord:
        """FAILED → PENDING and queued again; 409 for any other state."""
        self.get(owner=owner, job_id=job_id)
        retried = self._repo.retry(job_id)
        if retried.job is None:
            state = retried.current.status.value if retried.current else "gone"
            raise Conflict(
                f"only FAILED jobs can be retried; this one is {state}", code="not_retryable"
            )
        enqueue(retried.job, queue=self._queue, repo=self._repo)
        log.info("job retried", extra={"job_id": job_id, "tenant": owner})
        return retried.job

    def delete(self, *, owner: str, job_id: str) -> None:
        """Remove the caller's job: its image, its result file, its deliveries, its record."""
        job = self.get(owner=owner, job_id=job_id)
        self._images.delete(job.s3_key)
        if job.source == "s3" and job.filename:
            self._images.delete(results_key(job.owner, job.filename))
        self._deliveries.delete_for_job(job_id)
        if self._forget is not None:
            self._forget(job)
        self._repo.delete(job_id)
        log.info("job deleted", extra={"job_id": job_id, "tenant": owner})
