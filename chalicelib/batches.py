"""Batches: many images in one multipart request; each valid file becomes a job."""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from typing import Literal

from chalicelib.batch_store import BatchRecord, BatchStore
from chalicelib.contract import (
    Batch,
    BatchAccepted,
    ErrorDetail,
    JobStatus,
    OptionFields,
    Progress,
    Rejected,
)
from chalicelib.errors import AppError, BadRequest, NotFound, PayloadTooLarge
from chalicelib.forms import parse_form
from chalicelib.job_store import JobRecord, JobRepository, utc_now
from chalicelib.submission import job_options, merged_options
from chalicelib.submit import Submitter
from chalicelib.waiting import Pause, wait_until

log = logging.getLogger(__name__)


BatchStatus = Literal["waiting", "processing", "completed", "completed_with_errors", "canceled"]


def batch_status(counts: Counter[JobStatus], total: int) -> BatchStatus:
    """``waiting`` (nothing started), ``processing``, ``completed``,
    ``completed_with_errors`` (every job finished, some FAILED) or ``canceled`` (every job
    finished, some canceled)."""
    done = sum(counts[status] for status in JobStatus if status.terminal)
    if done == total:
        if counts[JobStatus.CANCELED]:
            return "canceled"
        return "completed_with_errors" if counts[JobStatus.FAILED] else "completed"
    if counts[JobStatus.PENDING] == total:
        return "waiting"
    return "processing"


class Batches:
    """Submit and follow batches; the jobs themselves are made by the ``Submitter``."""

    def __init__(
        self,
        *,
        submitter: Submitter,
        repo: JobRepository,
        store: BatchStore,
        pause: Pause | None = None,
    ) -> None:
        self._submitter = submitter
        self._repo = repo
        self._store = store
        self._pause = pause or Pause()

    def submit(
        self, *, owner: str, content_type: str, body: bytes, base_path: str
    ) -> BatchAccepted:
        """Make a job of every valid ``images`` part; report the invalid ones, sink none."""
        s = self._submitter.settings
        limit = s.max_batch_images
        if len(body) > s.max_image_bytes + 64 * 1024:  # binary parts: no base64 overhead
            raise PayloadTooLarge(
                f"the request body is {len(body)} bytes; a batch may carry at most "
                f"{s.max_image_bytes} bytes (use POST /uploads for bigger images)",
                code="batch_too_large",
            )
        form = parse_form(content_type, body, max_parts=limit + 8)
        files = form.files.get("images", [])
        if not files:
            raise BadRequest("send one multipart 'images' part per file", code="missing_images")
        if len(files) > limit:
            raise BadRequest(
                f"a batch holds at most {limit} images; this one has {len(files)}",
                code="too_many_images",
            )
        self._submitter.caps.check(owner, jobs=len(files))  # once for the batch
        options = merged_options(OptionFields(), form.fields)
        batch_id = uuid.uuid4().hex
        job_ids: list[str] = []
        rejected: list[Rejected] = []
        for index, part in enumerate(files):
            try:
                job = self._submitter.create_job(
                    owner=owner,
                    data=part.data,
                    webhook_url=form.fields.get("webhook_url"),
                    batch_id=batch_id,
                    filename=part.filename,
                    capped=True,
                    options=job_options(options),
                    use_cache=options.cache,
                )
            except AppError as exc:
                if exc.code == "invalid_webhook_url":
                    raise  # the same for every file: the request is wrong, not the file
                error = ErrorDetail(code=exc.code, message=exc.message)
                rejected.append(Rejected(index=index, filename=part.filename, error=error))
                continue
            job_ids.append(job.job_id)
        if not job_ids:
            reasons = "; ".join(f"#{r.index}: {r.error.message}" for r in rejected)
            raise BadRequest(
                f"no file in the batch is an image we accept ({reasons})", code="no_valid_images"
            )
        record = BatchRecord(
            batch_id=batch_id, created_at=utc_now(), job_ids=job_ids, rejected=rejected
        )
        self._store.put(owner, record)
        log.info("batch submitted", extra={"batch_id": batch_id, "jobs": len(job_ids)})
        return BatchAccepted(
            batch_id=batch_id,
            job_ids=job_ids,
            rejected=rejected,
            status_url=f"{base_path}/batches/{batch_id}",
        )

    def record(self, *, owner: str, batch_id: str) -> BatchRecord:
        """The caller's batch record; 404 for anyone else's."""
        record = self._store.get(owner, batch_id)
        if record is None:
            raise NotFound(f"no batch {batch_id!r}", code="batch_not_found")
        return record

    def jobs(self, record: BatchRecord) -> list[JobRecord]:
        """The batch's jobs in the order of its files; deleted jobs drop out."""
        found = self._repo.get_many(record.job_ids)
        return [found[j] for j in record.job_ids if j in found]

    def get(self, *, owner: str, batch_id: str, wait: float | None = None) -> Batch:
        """The caller's batch with its jobs and progress; 404 for anyone else's. With ``wait``,
        once every job is finished or after ``wait`` seconds, whichever comes first."""
        record = self.record(owner=owner, batch_id=batch_id)

        def jobs() -> list[JobRecord]:
            return self.jobs(record)

        current = jobs()
        if wait:
            current = wait_until(
                jobs,
                lambda js: all(j.status.terminal for j in js),
                first=current,
                seconds=wait,
                pause=self._pause,
            )
        return self.present(record, current)

    def present(self, record: BatchRecord, current: list[JobRecord]) -> Batch:
        """A batch record and its jobs as ``GET /batches/{batch_id}`` shows them."""
        counts = Counter(job.status for job in current)
        return Batch(
            batch_id=record.batch_id,
            created_at=record.created_at,
            status=batch_status(counts, len(current)),
            progress=Progress(
                total=len(current),
                **{status.value.lower(): counts[status] for status in JobStatus},
            ),
            rejected=record.rejected,
            jobs=[job.view() for job in current],
        )
