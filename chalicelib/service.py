"""The use cases the handlers call: submit, read and list jobs, and classify queued batches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chalicelib.classifier import Classifier, ModelInfo
from chalicelib.errors import BadRequest, NotFound, PermanentJobError
from chalicelib.images import inspect, to_model_input
from chalicelib.jobs import Job, JobPage, JobRepository, JobStatus, is_job_id, new_job_id, utc_now
from chalicelib.notify import EventPublisher
from chalicelib.queue import JobQueue, job_id_from_message
from chalicelib.settings import Settings
from chalicelib.storage import ImageStore
from chalicelib.submission import parse_submission

log = logging.getLogger(__name__)

MAX_PAGE = 100
DEFAULT_PAGE = 20


@dataclass(frozen=True)
class QueueMessage:
    """The parts of an SQS record the classifier uses."""

    message_id: str
    body: str
    sent_at_ms: int | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> QueueMessage:
        """From a Lambda SQS event record (``messageId``, ``body``, ``attributes``)."""
        sent = (record.get("attributes") or {}).get("SentTimestamp")
        return cls(
            message_id=record["messageId"],
            body=record.get("body", ""),
            sent_at_ms=int(sent) if sent and str(sent).isdigit() else None,
        )


@dataclass
class _Prepared:
    message: QueueMessage
    job: Job
    tensor: np.ndarray
    started: float
    timings: dict[str, float] = field(default_factory=dict)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class JobService:
    """Everything a handler needs, with its collaborators injected."""

    def __init__(
        self,
        *,
        settings: Settings,
        repo: JobRepository,
        store: ImageStore,
        queue: JobQueue,
        publisher: EventPublisher,
        classifier: Callable[[], Classifier],
        model_info: ModelInfo,
    ) -> None:
        self.settings = settings
        self._repo = repo
        self._store = store
        self._queue = queue
        self._publisher = publisher
        self._classifier = classifier
        self.model_info = model_info

    # --- API side -------------------------------------------------------------------------

    def submit(
        self, *, owner: str, content_type: str, body: bytes, query: Mapping[str, str]
    ) -> Job:
        """Check the image at the door, store it, record the job PENDING and queue it."""
        s = self.settings
        submission = parse_submission(
            content_type=content_type, body=body, query=query, max_bytes=s.max_image_bytes
        )
        info = inspect(submission.data, max_bytes=s.max_image_bytes, max_pixels=s.max_image_pixels)
        job_id = new_job_id()
        now = utc_now()
        job = Job(
            job_id=job_id,
            owner=owner,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
            s3_key=ImageStore.key_for(owner, job_id),
            content_type=info.content_type,
            size_bytes=len(submission.data),
            webhook_url=submission.webhook_url,
        )
        # Image first, then record, then message: a message never points at nothing.
        self._store.put(job.s3_key, submission.data, info.content_type)
        self._repo.create(job)
        self._queue.send(job_id)
        log.info("job submitted", extra={"job_id": job_id, "tenant": owner})
        return job

    def get(self, *, owner: str, job_id: str) -> Job:
        """The caller's job; 404 for malformed ids, unknown ids and other tenants' jobs."""
        job = self._repo.get(job_id) if is_job_id(job_id) else None
        if job is None or job.owner != owner:
            raise NotFound(f"no job {job_id!r}", code="job_not_found")
        return job

    def image_url(self, job: Job) -> str:
        """A short-lived presigned URL for the job's image."""
        return self._store.presigned_url(job.s3_key, expires_in=self.settings.image_url_ttl_s)

    def list_jobs(
        self,
        *,
        owner: str,
        status: str | None,
        limit: str | None,
        next_token: str | None,
    ) -> JobPage:
        """The caller's jobs, newest first; query parameters are validated here."""
        wanted = None
        if status:
            try:
                wanted = JobStatus(status.upper())
            except ValueError as exc:
                choices = ", ".join(s.value for s in JobStatus)
                raise BadRequest(f"status must be one of {choices}", code="invalid_status") from exc
        size = DEFAULT_PAGE
        if limit:
            if not limit.isdigit() or not 1 <= int(limit) <= MAX_PAGE:
                raise BadRequest(f"limit must be 1..{MAX_PAGE}", code="invalid_limit")
            size = int(limit)
        return self._repo.list_for_owner(owner, status=wanted, limit=size, next_token=next_token)

    # --- classifier side ------------------------------------------------------------------

    def process_batch(self, messages: Sequence[QueueMessage]) -> list[str]:
        """Classify a batch; return the message ids to hand back to SQS (transient failures).

        Permanent failures end the job FAILED and are acknowledged; a job already terminal is
        acknowledged without work, so duplicated and late deliveries change nothing.
        """
        failed: list[str] = []
        ready: list[_Prepared] = []
        for message in messages:
            try:
                prepared = self._prepare(message)
            except Exception:
                log.exception(
                    "transient failure, message returned to the queue",
                    extra={"message_id": message.message_id},
                )
                failed.append(message.message_id)
                continue
            if prepared is not None:
                ready.append(prepared)
        if ready:
            failed.extend(self._classify(ready))
        return failed

    def _prepare(self, message: QueueMessage) -> _Prepared | None:
        started = time.perf_counter()
        job_id = job_id_from_message(message.body)
        if job_id is None or not is_job_id(job_id):
            log.error("discarding a message that names no job", extra={"body": message.body[:200]})
            return None
        job = self._repo.start(job_id)
        if job is None:
            self._settle_duplicate(job_id)
            return None
        timings: dict[str, float] = {}
        if message.sent_at_ms is not None:
            timings["queue_wait"] = max(0.0, round(time.time() * 1000 - message.sent_at_ms, 2))
        try:
            t = time.perf_counter()
            data = self._store.get(job.s3_key)
            timings["s3_get"] = _ms(t)
            t = time.perf_counter()
            tensor = to_model_input(data, max_pixels=self.settings.max_image_pixels)
            timings["decode"] = _ms(t)
        except PermanentJobError as exc:
            self._finish_failed(job_id, exc.code, exc.message)
            return None
        return _Prepared(message=message, job=job, tensor=tensor, started=started, timings=timings)

    def _classify(self, ready: list[_Prepared]) -> list[str]:
        t = time.perf_counter()
        try:
            results = self._classifier().predict(np.stack([p.tensor for p in ready]))
        except Exception:
            log.exception("inference failed; the batch goes back to the queue")
            return [p.message.message_id for p in ready]
        per_image = round((time.perf_counter() - t) * 1000 / len(ready), 2)
        failed = []
        for prepared, predictions in zip(ready, results, strict=True):
            timings = prepared.timings
            timings["inference"] = per_image
            timings["total"] = _ms(prepared.started)
            try:
                done = self._repo.succeed(
                    prepared.job.job_id,
                    predictions=predictions,
                    model=self.model_info.to_dict(),
                    timings_ms=timings,
                )
                if done is not None:
                    self._publish(done)
            except Exception:
                log.exception("could not record the result", extra={"job_id": prepared.job.job_id})
                failed.append(prepared.message.message_id)
        return failed

    def _finish_failed(self, job_id: str, code: str, message: str) -> None:
        log.warning("job failed", extra={"job_id": job_id, "code": code})
        job = self._repo.fail(job_id, code=code, message=message)
        if job is not None:
            self._publish(job)

    def _settle_duplicate(self, job_id: str) -> None:
        """A message for a job that is already terminal (or gone): publish if nobody has yet."""
        job = self._repo.get(job_id)
        if job is None:
            log.warning("message for an unknown job acknowledged", extra={"job_id": job_id})
        elif job.status.terminal and not job.notified:
            self._publish(job)

    def _publish(self, job: Job) -> None:
        self._publisher.publish(job)
        self._repo.mark_notified(job.job_id)
