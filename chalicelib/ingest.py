"""S3 ingest: images that arrive in the bucket become jobs.

Presigned uploads (``uploads/<tenant>/<job_id>/<file>``) and bulk drops (``incoming/<tenant>/…``)
are announced by S3 notifications, which reach the ingest function through an SQS queue
(Chalice's CloudFormation packager refuses ``on_s3_event``; S3 → SQS works in moto and in AWS).
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import telemetry
from chalicelib.answer_cache import AnswerCache
from chalicelib.contract import JobError, JobStatus, OptionFields
from chalicelib.errors import AppError, PermanentJobError
from chalicelib.image_store import ImageStore, StoredObject, image_key, stored_object
from chalicelib.images import inspect
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRecord, JobRepository
from chalicelib.queues import JobQueue, enqueue
from chalicelib.settings import Settings
from chalicelib.submission import job_options
from chalicelib.submit import new_record
from chalicelib.uploads import stored_options

log = logging.getLogger(__name__)


def objects_in(record: SQSRecord) -> list[StoredObject]:
    """The created objects an S3 notification (delivered through SQS) announces; S3's test
    event and anything outside the ingest prefixes announce none."""
    try:
        body = record.json_body
    except ValueError:
        log.error("ingest message is not an S3 notification", extra={"body": record.body[:99]})
        return []
    if not isinstance(body, dict) or not isinstance(body.get("Records"), list):
        return []  # s3:TestEvent, sent when the notification is set up, has no records
    notifications = list(S3Event(body).records)
    found = []
    for notification in notifications:
        if not notification.event_name.startswith("ObjectCreated:"):
            continue
        s3 = notification.s3
        key = unquote_plus(s3.get_object.key)  # S3 sends keys URL-encoded (a%2Fb+c.jpg)
        obj = stored_object(s3.bucket.name, key, str(s3.get_object.etag or ""))
        if obj is None:
            log.warning("ignoring an object outside the ingest prefixes", extra={"key": key})
        else:
            found.append(obj)
    return found


class Ingester:
    """Makes (once) the job of each image S3 announces, and queues it."""

    def __init__(
        self,
        *,
        settings: Settings,
        repo: JobRepository,
        images: ImageStore,
        queue: JobQueue,
        publisher: EventPublisher,
        cache: AnswerCache,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._images = images
        self._queue = queue
        self._publisher = publisher
        self._cache = cache

    def ingest(self, record: SQSRecord) -> None:
        """Every object the notification announces; raise to have SQS retry the message."""
        for obj in objects_in(record):
            self.ingest_object(obj)

    def ingest_object(self, obj: StoredObject) -> JobRecord | None:
        """The job of an object that arrived in the bucket.

        The job id comes from the object, so a repeated S3 event finds the job it made before
        (the refused create hands it back) and queues it again only while it is PENDING. An
        object that is not an image we accept becomes a FAILED job with the reason, so its
        uploader learns why. An image answered before (same tenant, bytes and options) is
        SUCCEEDED at once with that answer, and its result file is written as for any other.
        """
        try:
            data, metadata = self._images.get_with_metadata(obj.key)
        except PermanentJobError:
            log.warning("object gone before it was ingested", extra={"key": obj.key})
            return None
        options = stored_options(metadata)
        if obj.source == "upload":
            return self._take_upload(obj, data, options)
        return self._make_job(obj, data, options, s3_key=obj.key)

    def _take_upload(
        self, obj: StoredObject, data: bytes, options: OptionFields
    ) -> JobRecord | None:
        """An upload id is used once: its image moves to the job's own key, and the upload
        object is removed, so a form used again (within its validity) cannot replace the image
        of a job that has been made. Another image under a used id is removed and refused; the
        same bytes again are a repeated event, answered like one."""
        existing = self._repo.get(obj.job_id)
        if existing is not None and existing.image_sha256 != hashlib.sha256(data).hexdigest():
            log.warning(
                "upload refused: its upload id was used already",
                extra={"job_id": obj.job_id, "tenant": obj.tenant, "key": obj.key},
            )
            telemetry.count("uploads_refused")
            self._images.delete(obj.key)
            return existing
        own_key = image_key(obj.tenant, obj.job_id)
        inspected = self._inspected(data)
        if existing is None:
            self._images.put(own_key, data, inspected[0])
        job = self._make_job(obj, data, options, s3_key=own_key, inspected=inspected)
        self._images.delete(obj.key)  # after the job is queued: a crash before retries it all
        return job

    def _inspected(self, data: bytes) -> tuple[str, int | None, AppError | None]:
        """The image's type and pixels, or why it is not one we accept (stored as bytes)."""
        s = self._settings
        try:
            found = inspect(data, max_bytes=s.max_upload_bytes, max_pixels=s.max_image_pixels)
        except AppError as exc:
            return "application/octet-stream", None, exc
        return found.content_type, found.width * found.height, None

    def _make_job(
        self,
        obj: StoredObject,
        data: bytes,
        options: OptionFields,
        *,
        s3_key: str,
        inspected: tuple[str, int | None, AppError | None] | None = None,
    ) -> JobRecord | None:
        content_type, pixels, error = inspected or self._inspected(data)
        job = new_record(
            self._settings,
            owner=obj.tenant,
            job_id=obj.job_id,
            s3_key=s3_key,
            content_type=content_type,
            data=data,
            source=obj.source,
            filename=obj.filename,
            pixels=pixels,
            options=job_options(options),
        )
        if error is not None:
            job = job.model_copy(
                update={
                    "status": JobStatus.FAILED,
                    "error": JobError(code=error.code, message=error.message),
                }
            )
        elif options.cache:
            job = self._cache.answer(job)
        created = self._repo.create(job)
        if created.job is None:  # made before, by an earlier delivery of this event
            existing = created.current
            if existing is not None and existing.status is JobStatus.PENDING:
                enqueue(existing, queue=self._queue, repo=self._repo)
            elif existing is not None and existing.cached_from:
                self._publisher.publish(existing)  # the first delivery may have died before it
            return existing
        if error is not None:
            telemetry.count("jobs_failed", code=error.code)
            self._publisher.publish(job)
        elif job.cached_from:
            self._publisher.publish(job)
        else:
            enqueue(job, queue=self._queue, repo=self._repo)
        telemetry.count("jobs_submitted", source=job.source)
        log.info("object ingested", extra={"job_id": job.job_id, "tenant": obj.tenant})
        return job
