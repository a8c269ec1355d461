"""The use cases the handlers call: submit, read and list jobs, and classify queued batches."""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chalicelib import telemetry
from chalicelib.classifier import Classifier, ModelInfo
from chalicelib.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    PermanentJobError,
    ServiceUnavailable,
    SimulatedCrash,
    TransientError,
)
from chalicelib.images import decoded_pixels, inspect, to_model_input
from chalicelib.ingest import StoredObject, objects_in
from chalicelib.jobs import (
    Job,
    JobPage,
    JobRepository,
    JobStatus,
    idempotent_job_id,
    is_job_id,
    new_job_id,
    utc_now,
)
from chalicelib.notify import EventPublisher
from chalicelib.overlap import Budget, Overlap
from chalicelib.queue import JobMessage, JobQueue
from chalicelib.settings import Settings
from chalicelib.storage import ImageStore, results_key
from chalicelib.submission import parse_submission
from chalicelib.tenants import TenantStore
from chalicelib.webhooks import Resolver, system_resolver, vet_url

log = logging.getLogger(__name__)

MAX_PAGE = 100
DEFAULT_PAGE = 20
MAX_IDEMPOTENCY_KEY = 255


def _check_idempotency_key(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
            code="invalid_idempotency_key",
        )
    return key


@dataclass(frozen=True)
class QueueMessage:
    """The parts of an SQS record the classifier uses."""

    message_id: str
    body: str
    sent_at_ms: int | None = None
    receive_count: int | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> QueueMessage:
        """From a Lambda SQS event record (``messageId``, ``body``, ``attributes``)."""
        attributes = record.get("attributes") or {}
        sent = str(attributes.get("SentTimestamp", ""))
        received = str(attributes.get("ApproximateReceiveCount", ""))
        return cls(
            message_id=record["messageId"],
            body=record.get("body", ""),
            sent_at_ms=int(sent) if sent.isdigit() else None,
            receive_count=int(received) if received.isdigit() else None,
        )


@dataclass
class _Prepared:
    message: QueueMessage
    job: Job
    tensor: np.ndarray
    started: float
    timings: dict[str, float] = field(default_factory=dict)
    predictions: list[dict[str, Any]] = field(default_factory=list)


_DELIVERY_FIELDS = (
    "target", "url", "event_type", "state", "attempts", "last_status", "last_error",
    "next_attempt_at", "updated_at",
)  # fmt: skip


def _delivery_view(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in _DELIVERY_FIELDS}


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
        tenants: TenantStore,
        rng: random.Random | None = None,
        resolve: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self._repo = repo
        self._store = store
        self._queue = queue
        self._publisher = publisher
        self._classifier = classifier
        self.model_info = model_info
        self._tenants = tenants
        self._resolve = resolve
        self._rng = rng or random.Random(settings.fault_seed)
        self._overlap = Overlap(settings.classify_workers)
        self._decode_budget = Budget(settings.decode_budget_pixels)

    @property
    def repo(self) -> JobRepository:
        """The job records."""
        return self._repo

    @property
    def store(self) -> ImageStore:
        """The images."""
        return self._store

    @property
    def tenants(self) -> TenantStore:
        """Per-tenant records."""
        return self._tenants

    # --- API side -------------------------------------------------------------------------

    def submit(
        self,
        *,
        owner: str,
        content_type: str,
        body: bytes,
        query: Mapping[str, str],
        idempotency_key: str | None = None,
    ) -> Job:
        """Parse a ``POST /jobs`` request and create its job."""
        submission = parse_submission(
            content_type=content_type,
            body=body,
            query=query,
            max_bytes=self.settings.max_image_bytes,
        )
        return self.create_job(
            owner=owner,
            data=submission.data,
            webhook_url=submission.webhook_url,
            idempotency_key=idempotency_key,
        )

    def create_job(
        self,
        *,
        owner: str,
        data: bytes,
        webhook_url: str | None = None,
        idempotency_key: str | None = None,
        batch_id: str | None = None,
        filename: str | None = None,
    ) -> Job:
        """Check the image at the door, store it, record the job PENDING and queue it.

        With an ``Idempotency-Key`` the job id is derived from (tenant, key): a repeated request
        returns the job the first one made (and re-queues it if it is still PENDING, in case the
        first request died between recording and queueing); the same key with another image is
        a 409.
        """
        s = self.settings
        info = inspect(data, max_bytes=s.max_image_bytes, max_pixels=s.max_image_pixels)
        if webhook_url:
            vet_url(webhook_url, allow_hosts=s.webhook_allow_hosts, resolve=self._resolve)
        key = _check_idempotency_key(idempotency_key)
        job_id = idempotent_job_id(owner, key) if key else new_job_id()
        job = self._new_job(
            owner=owner,
            job_id=job_id,
            s3_key=ImageStore.key_for(owner, job_id),
            content_type=info.content_type,
            data=data,
            webhook_url=webhook_url or None,
            idempotency_key=key,
            batch_id=batch_id,
            filename=filename,
        )
        if key:
            existing = self._repo.get(job_id)
            if existing is not None:
                return self._replay(existing, job)
        # Image first, then record, then message: a message never points at nothing.
        self._store.put(job.s3_key, data, info.content_type)
        if not self._repo.create(job):  # a concurrent request with the same key won
            existing = self._repo.get(job_id)
            assert existing is not None
            return self._replay(existing, job)
        self._enqueue(job)
        telemetry.count("jobs_submitted", source=job.source)
        log.info("job submitted", extra={"job_id": job_id, "tenant": owner})
        return job

    def _new_job(
        self, *, owner: str, job_id: str, s3_key: str, content_type: str, data: bytes, **extra: Any
    ) -> Job:
        now = utc_now()
        return Job(
            job_id=job_id,
            owner=owner,
            status=JobStatus.PENDING,
            created_at=now,
            updated_at=now,
            s3_key=s3_key,
            content_type=content_type,
            size_bytes=len(data),
            image_sha256=hashlib.sha256(data).hexdigest(),
            expires_at=int(time.time()) + self.settings.retention_days * 86400,
            **extra,
        )

    def ingest(self, messages: Sequence[QueueMessage]) -> list[str]:
        """S3 notifications (through SQS): make the jobs; return the ids SQS should retry."""
        failed = []
        for message in messages:
            try:
                for obj in objects_in(message.body):
                    self.ingest_object(obj)
            except Exception:
                log.exception("ingest failed; SQS will retry", extra={"id": message.message_id})
                failed.append(message.message_id)
        return failed

    def ingest_object(self, obj: StoredObject) -> Job | None:
        """Make (once) the job for an image that arrived in the bucket, and queue it.

        The job id comes from the object (see ``chalicelib.ingest``), so a repeated S3 event
        finds the job it made before; it is queued again only if it is still PENDING. An object
        that is not an image we accept becomes a FAILED job with the reason, so its uploader
        learns why.
        """
        existing = self._repo.get(obj.job_id)
        if existing is not None:
            if existing.status is JobStatus.PENDING:
                self._enqueue(existing)
            return existing
        s = self.settings
        try:
            data = self._store.get(obj.key)
        except PermanentJobError:
            log.warning("object gone before it was ingested", extra={"key": obj.key})
            return None
        error: AppError | None = None
        content_type = "application/octet-stream"
        try:
            info = inspect(data, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)
            content_type = info.content_type
        except AppError as exc:
            error = exc
        job = self._new_job(
            owner=obj.tenant,
            job_id=obj.job_id,
            s3_key=obj.key,
            content_type=content_type,
            data=data,
            source=obj.source,
            filename=obj.filename,
        )
        if error is not None:
            job.status = JobStatus.FAILED
            job.error = {"code": error.code, "message": error.message}
        if not self._repo.create(job):  # a concurrent delivery of the same event won
            return self._repo.get(obj.job_id)
        if error is not None:
            telemetry.count("jobs_failed", code=error.code)
            self._publisher.publish(job)
        else:
            self._enqueue(job)
        telemetry.count("jobs_submitted", source=job.source)
        log.info("object ingested", extra={"job_id": job.job_id, "tenant": obj.tenant})
        return job

    def _replay(self, existing: Job, requested: Job) -> Job:
        if existing.image_sha256 != requested.image_sha256:
            raise Conflict(
                "this Idempotency-Key was already used with a different image",
                code="idempotency_key_reused",
            )
        if existing.status is JobStatus.PENDING:
            self._enqueue(existing)  # harmless if already queued: duplicates are no-ops
        return existing

    def _enqueue(self, job: Job) -> None:
        """Queue a recorded job; if the queue is down, the job ends FAILED (retryable), not lost."""
        try:
            self._queue.send(job)
        except TransientError as exc:
            self._repo.fail(job.job_id, code="enqueue_failed", message=str(exc))
            raise ServiceUnavailable(
                f"the job {job.job_id} was recorded but could not be queued; retry it with "
                f"POST /jobs/{job.job_id}/retry",
                code="queue_unavailable",
            ) from exc

    def retry(self, *, owner: str, job_id: str) -> Job:
        """FAILED → PENDING and queued again; 409 for any other state."""
        job = self.get(owner=owner, job_id=job_id)
        retried = self._repo.retry(job_id)
        if retried is None:
            current = self._repo.get(job_id) or job
            raise Conflict(
                f"only FAILED jobs can be retried; this one is {current.status.value}",
                code="not_retryable",
            )
        self._enqueue(retried)
        log.info("job retried", extra={"job_id": job_id, "tenant": owner})
        return retried

    def delete(self, *, owner: str, job_id: str) -> None:
        """Remove the caller's job: its image, its result file, its delivery records, its record."""
        job = self.get(owner=owner, job_id=job_id)
        self._store.delete(job.s3_key)
        if job.source == "s3" and job.filename:
            self._store.delete(results_key(job.owner, job.filename))
        for delivery in self._tenants.query(f"JOB#{job_id}", "DELIVERY#"):
            self._tenants.delete(f"JOB#{job_id}", f"DELIVERY#{delivery['target']}")
        self._repo.delete(job_id)
        log.info("job deleted", extra={"job_id": job_id, "tenant": owner})

    def view(self, *, owner: str, job_id: str) -> dict[str, Any]:
        """The caller's job as the API shows it: with an image URL and its webhook deliveries."""
        job = self.get(owner=owner, job_id=job_id)
        deliveries = self._tenants.query(f"JOB#{job_id}", "DELIVERY#")
        return {
            **job.to_api(),
            "image_url": self.image_url(job),
            "webhooks": [_delivery_view(d) for d in deliveries],
        }

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
        acknowledged without work, so duplicated and late deliveries change nothing. The jobs'
        starts, downloads and decodes overlap on a small thread pool; the batch is one ONNX run.
        """
        failed: list[str] = []
        todo: list[tuple[QueueMessage, JobMessage, bool]] = []
        seen: set[str] = set()
        for message in messages:
            parsed = JobMessage.parse(message.body)
            if parsed is None or not is_job_id(parsed.job_id):
                log.error(
                    "discarding a message that names no job", extra={"body": message.body[:200]}
                )
                continue
            if parsed.job_id in seen:
                continue  # the same job twice in one batch: one run answers both
            seen.add(parsed.job_id)
            # Faults are drawn here, in message order, so FAULT_SEED stays repeatable.
            todo.append((message, parsed, self._draw_fault()))
        ready: list[_Prepared] = []
        for (message, parsed, _), outcome in zip(
            todo, self._overlap.map(self._prepare, todo), strict=True
        ):
            if isinstance(outcome, Exception):
                log.error(
                    "transient failure, message returned to the queue",
                    exc_info=outcome,
                    extra={"message_id": message.message_id, "job_id": parsed.job_id},
                )
                failed.append(message.message_id)
            elif outcome is not None:
                ready.append(outcome)
        if ready:
            failed.extend(self._classify(ready))
        return failed

    def _draw_fault(self) -> bool:
        return bool(self.settings.fault_rate) and self._rng.random() < self.settings.fault_rate

    def _prepare(self, item: tuple[QueueMessage, JobMessage, bool]) -> _Prepared | None:
        with telemetry.job_context(item[1].job_id):  # every log line of this job names it
            return self._prepare_job(*item)

    def _prepare_job(
        self, message: QueueMessage, parsed: JobMessage, fault: bool
    ) -> _Prepared | None:
        started = time.perf_counter()
        job_id = parsed.job_id
        job = self._repo.start(job_id, queued=parsed.queued, receive_count=message.receive_count)
        if job is None:
            self._settle_duplicate(job_id)
            return None
        timings: dict[str, float] = {"start": _ms(started)}
        if fault:
            log.warning("fault injected", extra={"job_id": job_id})
            raise TransientError(f"injected fault (FAULT_RATE={self.settings.fault_rate})")
        if message.sent_at_ms is not None:
            timings["queue_wait"] = max(0.0, round(time.time() * 1000 - message.sent_at_ms, 2))
        try:
            t = time.perf_counter()
            data = self._store.get(job.s3_key)
            timings["s3_get"] = _ms(t)
            with self._decode_budget.hold(decoded_pixels(data)):
                t = time.perf_counter()
                tensor = to_model_input(data, max_pixels=self.settings.max_image_pixels)
                timings["decode"] = _ms(t)
        except PermanentJobError as exc:
            self._finish_failed(job_id, exc.code, exc.message)
            return None
        return _Prepared(message=message, job=job, tensor=tensor, started=started, timings=timings)

    def _crash_point(self, size: int) -> int | None:
        """Where this batch dies (CRASH_RATE), as a timeout or out-of-memory kill would."""
        if self.settings.crash_rate and self._rng.random() < self.settings.crash_rate:
            return self._rng.randrange(size)
        return None

    def _classify(self, ready: list[_Prepared]) -> list[str]:
        t = time.perf_counter()
        try:
            results = self._classifier().predict(np.stack([p.tensor for p in ready]))
        except Exception:
            log.exception("inference failed; the batch goes back to the queue")
            return [p.message.message_id for p in ready]
        per_image = round((time.perf_counter() - t) * 1000 / len(ready), 2)
        crash_at = self._crash_point(len(ready))
        writing = ready if crash_at is None else ready[:crash_at]
        for prepared, predictions in zip(writing, results, strict=False):
            prepared.predictions = predictions
            prepared.timings["inference"] = per_image
            prepared.timings["total"] = _ms(prepared.started)
        failed = self._record(writing) if writing else []
        if crash_at is not None:
            log.warning("crash injected", extra={"after_results": crash_at})
            raise SimulatedCrash(f"injected crash after {crash_at} of {len(ready)} results")
        return failed

    def _succeed(self, prepared: _Prepared) -> Job | None:
        return self._repo.succeed(
            prepared.job,
            predictions=prepared.predictions,
            model=self.model_info.to_dict(),
            timings_ms=prepared.timings,
        )

    def _record(self, writing: list[_Prepared]) -> list[str]:
        """Write the results (each a conditional write, concurrently), then announce them."""
        t = time.perf_counter()
        outcomes = self._overlap.map(self._succeed, writing)
        telemetry.observe_ms("result_write_ms", (time.perf_counter() - t) * 1000 / len(writing))
        failed: list[str] = []
        done: list[tuple[_Prepared, Job]] = []
        for prepared, outcome in zip(writing, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error(
                    "could not record the result",
                    exc_info=outcome,
                    extra={"job_id": prepared.job.job_id},
                )
                failed.append(prepared.message.message_id)
            elif outcome is not None:  # None: no longer PROCESSING (a dead letter failed it)
                done.append((prepared, outcome))
                telemetry.count("jobs_succeeded")
                telemetry.observe_ms("classification_latency_ms", prepared.timings["total"])
                if "queue_wait" in prepared.timings:
                    telemetry.observe_ms("queue_wait_ms", prepared.timings["queue_wait"])
        if done:
            failed.extend(self._announce(done))
        return failed

    def _announce(self, done: list[tuple[_Prepared, Job]]) -> list[str]:
        """Publish the batch's events together; hand back the messages whose event SNS did not
        accept. Their redelivery finds the job terminal and publishes its event again (so does
        any redelivery: an event goes out at least once, with the same id each time)."""
        t = time.perf_counter()
        try:
            unsent = self._publisher.publish_many([job for _, job in done])
        except Exception:
            log.exception("could not publish the batch's events; its messages go back")
            return [prepared.message.message_id for prepared, _ in done]
        telemetry.observe_ms("event_publish_ms", (time.perf_counter() - t) * 1000 / len(done))
        return [prepared.message.message_id for prepared, job in done if job.job_id in unsent]

    def dead_letters(self, messages: Sequence[QueueMessage]) -> list[str]:
        """Messages SQS gave up on: their jobs end FAILED (``retries_exhausted``) if not done.

        A dead letter from before a retry leaves the retried run alone (generation check).
        """
        failed = []
        for message in messages:
            parsed = JobMessage.parse(message.body)
            if parsed is None or not is_job_id(parsed.job_id):
                log.error("dead letter names no job", extra={"body": message.body[:200]})
                continue
            reason = (
                f"classification failed {message.receive_count or 'too many'} times; "
                "retry the job to try again"
            )
            try:
                job = self._repo.fail(
                    parsed.job_id,
                    code="retries_exhausted",
                    message=reason,
                    generation=parsed.generation,
                )
                telemetry.count("dead_letters")
                if job is not None:
                    log.warning("dead letter: job failed", extra={"job_id": parsed.job_id})
                    telemetry.count("jobs_failed", code="retries_exhausted")
                    self._publisher.publish(job)
                else:
                    self._settle_duplicate(parsed.job_id)
            except Exception:
                log.exception("could not settle a dead letter", extra={"job_id": parsed.job_id})
                failed.append(message.message_id)
        return failed

    def _finish_failed(self, job_id: str, code: str, message: str) -> None:
        log.warning("job failed", extra={"job_id": job_id, "code": code})
        job = self._repo.fail(job_id, code=code, message=message)
        if job is not None:
            telemetry.count("jobs_failed", code=code)
            self._publisher.publish(job)

    def _settle_duplicate(self, job_id: str) -> None:
        """A message for a job that is already terminal (or gone).

        The attempt that ended the job may have died before its event went out, and nothing
        records that it did (a write per job to say so cost as much as the result's own write):
        the event is published again. Its id is the same, so receivers that saw it drop it, and
        webhooks already attempted for it are not sent twice.
        """
        job = self._repo.get(job_id)
        if job is None:
            log.warning("message for an unknown job acknowledged", extra={"job_id": job_id})
        elif job.status.terminal:
            self._publisher.publish(job)
