"""Submitting: the door checks, the image stored and the job recorded PENDING, the job queued, or,
when the same image was answered before with the same options, the job recorded SUCCEEDED with
that answer and its event published.

Shared by ``POST /jobs``, batches and S3 ingest.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chalicelib import telemetry
from chalicelib.answer_cache import AnswerCache
from chalicelib.contract import JobOptions, JobStatus, SubmitHeaders, SubmitQuery
from chalicelib.errors import Conflict, TransientError
from chalicelib.image_store import ImageStore, image_key
from chalicelib.images import inspect
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import (
    JobRecord,
    JobRepository,
    Transition,
    idempotent_job_id,
    new_job_id,
    utc_now,
)
from chalicelib.pending_caps import PendingCaps
from chalicelib.queues import JobQueue, enqueue
from chalicelib.settings import Settings
from chalicelib.submission import parse_submission
from chalicelib.webhook_targets import Resolver, system_resolver, vet_url

log = logging.getLogger(__name__)


def new_record(
    settings: Settings, *, owner: str, job_id: str, s3_key: str, content_type: str, data: bytes,
    **extra: Any,
) -> JobRecord:  # fmt: skip
    """A PENDING job for ``data``, kept for the retention period."""
    now = utc_now()
    return JobRecord(
        job_id=job_id,
        owner=owner,
        status=JobStatus.PENDING,
        created_at=now,
        updated_at=now,
        attempts=0,
        s3_key=s3_key,
        content_type=content_type,
        size_bytes=len(data),
        image_sha256=hashlib.sha256(data).hexdigest(),
        expires_at=int(time.time()) + settings.retention_days * 86400,
        has_deliveries=False,
        **extra,
    )


class Submitter:
    """Makes jobs of images handed to the API."""

    def __init__(
        self,
        *,
        settings: Settings,
        repo: JobRepository,
        images: ImageStore,
        queue: JobQueue,
        caps: PendingCaps,
        cache: AnswerCache,
        publisher: EventPublisher,
        resolve: Resolver = system_resolver,
    ) -> None:
        self.settings = settings
        self.caps = caps
        self._repo = repo
        self._images = images
        self._queue = queue
        self._cache = cache
        self._publisher = publisher
        self._resolve = resolve
        # The image's PUT beside the record's write; one a request, a few when requests overlap.
        self._writes = ThreadPoolExecutor(4, thread_name_prefix="submit")

    def submit(
        self,
        *,
        owner: str,
        content_type: str,
        body: bytes,
        query: SubmitQuery,
        headers: SubmitHeaders,
    ) -> JobRecord:
        """``POST /jobs``: parse the body, whatever its form, and make its job."""
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
            idempotency_key=headers.idempotency_key,
            options=submission.job_options,
            use_cache=submission.options.cache,
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
        capped: bool = False,
        options: JobOptions | None = None,
        use_cache: bool = True,
    ) -> JobRecord:
        """Check the image at the door, store it, record the job PENDING and queue it; or, with
        ``use_cache`` and an earlier answer to the same image and options, record it SUCCEEDED
        with that answer and publish its event.

        With an ``Idempotency-Key`` the job id is derived from (tenant, key): a repeated request
        returns the job the first one made (and queues it again if it is still PENDING, in case
        the first request died between recording and queueing); the same key with another
        image is a 409. Without a key nothing is read: a create that is refused (a concurrent
        request with the same key) hands back the record that won. A new job must fit the
        tenant's caps on unfinished work, unless the caller checked them (``capped``).
        """
        s = self.settings
        info = inspect(data, max_bytes=s.max_image_bytes, max_pixels=s.max_image_pixels)
        if webhook_url:
            vet_url(webhook_url, policy=s.webhook_policy, resolve=self._resolve)
        job_id = idempotent_job_id(owner, idempotency_key) if idempotency_key else new_job_id()
        job = new_record(
            s,
            owner=owner,
            job_id=job_id,
            s3_key=image_key(owner, job_id),
            content_type=info.content_type,
            data=data,
            webhook_url=webhook_url or None,
            idempotency_key=idempotency_key,
            batch_id=batch_id,
            filename=filename,
            pixels=info.width * info.height,
            options=options or JobOptions(),
        )
        if idempotency_key:  # a replay must not overwrite the first request's image
            existing = self._repo.get(job_id)
            if existing is not None:
                return self._replay(existing, job)
        if use_cache:
            job = self._cache.answer(job)
        if not capped and not job.status.terminal:  # a cached answer adds no unfinished work
            self.caps.check(owner, pixels=info.width * info.height)
        # A cached job keeps an image of its own: deleting either job leaves the other whole.
        created = self._store(job, data, info.content_type, known=idempotency_key is not None)
        if created.job is None:
            assert created.current is not None
            return self._replay(created.current, job)
        self.dispatch(job)
        telemetry.count("jobs_submitted", source=job.source)
        log.info(
            "job submitted", extra={"job_id": job_id, "tenant": owner, "cached": job.cached_from}
        )
        return job

    def _store(self, job: JobRecord, data: bytes, content_type: str, *, known: bool) -> Transition:
        """Store the image and record the job; the message is sent after both, so it never
        points at nothing.

        A new random id is known to nobody until this request answers, so its image and record
        are written side by side (the record no longer waits for S3); should the image fail,
        the record is removed again and the error raised, so the client's new attempt makes a
        new job. An id another request can know (``known``: an ``Idempotency-Key``'s) may be
        replayed the moment its record exists: its image is stored first.
        """
        if known:
            self._images.put(job.s3_key, data, content_type)
            return self._repo.create(job)
        image = self._writes.submit(self._images.put, job.s3_key, data, content_type)
        try:
            created = self._repo.create(job)
        finally:
            failure = image.exception()  # the image's outcome, whatever the record's
        if failure is not None and created.job is not None:
            try:
                self._repo.delete(job.job_id)
            except TransientError:
                log.exception(
                    "a job whose image was not stored is left PENDING", extra={"job_id": job.job_id}
                )
            raise failure
        return created

    def dispatch(self, job: JobRecord) -> None:
        """A PENDING job queued; a job answered from the cache announced (webhooks, result
        files), as a classified one is.

        Should SNS refuse the event, the job's message goes on the jobs queue instead: the
        classifier's start is refused for a finished job, and it publishes the job's event then
        (``classify.settle``), so the event goes out at least once without a model run.
        """
        if job.status is JobStatus.PENDING:
            enqueue(job, queue=self._queue, repo=self._repo)
        elif job.cached_from:
            try:
                self._publisher.publish(job)
            except TransientError:
                log.warning("event not published; queued for the classifier to publish")
                self._queue.send(job.job_id, job.generation, tenant=job.owner)

    def _replay(self, existing: JobRecord, requested: JobRecord) -> JobRecord:
        if existing.image_sha256 != requested.image_sha256:
            raise Conflict(
                "this Idempotency-Key was already used with a different image",
                code="idempotency_key_reused",
            )
        # The first request may have died before queueing or announcing: do it again (a
        # duplicate message or event is harmless: the event's id is the same).
        self.dispatch(existing)
        return existing
