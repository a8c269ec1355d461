"""The classifier's batch: start each job, fetch and decode its image, one ONNX run for all,
write each result, announce the batch's events together.

Each job starts with one conditional ``UpdateItem`` that returns the started record: nothing in
the queue message is trusted as the job's state. A job that cannot start (finished, deleted, or
retried since the message was sent) is acknowledged without work; the refused write hands back
the record, so a finished job's event is published again without reading it (an attempt may have
died between its result and its event). Starts, downloads and decodes overlap on a small pool.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib import telemetry
from chalicelib.contract import Category, Model, Prediction
from chalicelib.errors import PermanentJobError
from chalicelib.images import decoded_pixels, to_model_input
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRecord, Transition, is_job_id
from chalicelib.overlap import Budget, Overlap
from chalicelib.queues import JobMessage
from chalicelib.settings import Settings

if TYPE_CHECKING:
    from chalicelib.classifier import Classifier

log = logging.getLogger(__name__)


class Images(Protocol):
    """Where the classifier reads images from (``ImageStore``)."""

    def get(self, key: str) -> bytes:
        """The image's bytes."""
        ...


class Remembered(Protocol):
    """Where classified jobs are remembered as the answer to their image (``AnswerCache``)."""

    def remember(self, jobs: Sequence[JobRecord]) -> None:
        """Make each job the answer to its image and options."""
        ...


class Jobs(Protocol):
    """The job transitions the classifier makes (``JobRepository``)."""

    def start(self, job_id: str, *, generation: int) -> Transition:
        """PENDING/PROCESSING → PROCESSING."""
        ...

    def succeed(
        self,
        started: JobRecord,
        *,
        predictions: list[Prediction],
        model: Model,
        timings_ms: dict[str, float],
        categories: list[Category] | None = None,
    ) -> JobRecord | None:
        """PROCESSING → SUCCEEDED."""
        ...

    def fail(
        self, job_id: str, *, code: str, message: str, generation: int | None = None
    ) -> Transition:
        """PENDING/PROCESSING → FAILED."""
        ...


@dataclass
class _Prepared:
    record: SQSRecord
    job: JobRecord
    tensor: np.ndarray
    started: float
    timings: dict[str, float] = field(default_factory=dict)
    predictions: list[Prediction] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 2)


class BatchClassifier:
    """Classifies a batch of jobs-queue messages; reports the ones SQS should hand over again."""

    def __init__(
        self,
        *,
        settings: Settings,
        repo: Jobs,
        images: Images,
        publisher: EventPublisher,
        classifier: Callable[[], Classifier],
        model: Model,
        cache: Remembered | None = None,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._images = images
        self._publisher = publisher
        self._classifier = classifier
        self._model = model
        self._cache = cache
        self._overlap = Overlap(settings.classify_workers)
        self._decode_budget = Budget(settings.decode_budget_pixels)

    def process(self, records: Sequence[SQSRecord]) -> list[str]:
        """Classify a batch; the message ids to hand back to SQS (transient failures).

        Permanent failures end the job FAILED and are acknowledged; so are messages that name
        no job. The same job twice in a batch is run once.
        """
        todo: list[tuple[SQSRecord, JobMessage]] = []
        seen: set[str] = set()
        for record in records:
            parsed = JobMessage.parse(record.body)
            if parsed is None or not is_job_id(parsed.job_id):
                log.error(
                    "discarding a message that names no job", extra={"body": record.body[:200]}
                )
            elif parsed.job_id not in seen:
                seen.add(parsed.job_id)
                todo.append((record, parsed))
        failed: list[str] = []
        ready: list[_Prepared] = []
        for (record, parsed), outcome in zip(
            todo, self._overlap.map(self._prepare, todo), strict=True
        ):
            if isinstance(outcome, Exception):
                log.error(
                    "transient failure, message returned to the queue",
                    exc_info=outcome,
                    extra={"message_id": record.message_id, "job_id": parsed.job_id},
                )
                failed.append(record.message_id)
            elif outcome is not None:
                ready.append(outcome)
        if ready:
            failed.extend(self._classify(ready))
        return failed

    def _prepare(self, item: tuple[SQSRecord, JobMessage]) -> _Prepared | None:
        with telemetry.job_context(item[1].job_id):  # every log line of this job names it
            return self._prepare_job(*item)

    def _prepare_job(self, record: SQSRecord, message: JobMessage) -> _Prepared | None:
        started = time.perf_counter()
        start = self._repo.start(message.job_id, generation=message.generation)
        if start.job is None:
            self._settle_unstarted(message, start)
            return None
        job = start.job
        timings: dict[str, float] = {"start": _ms(started)}
        sent_ms = record.attributes.sent_timestamp
        if sent_ms:
            timings["queue_wait"] = max(0.0, round(time.time() * 1000 - int(sent_ms), 2))
        try:
            t = time.perf_counter()
            data = self._images.get(job.s3_key)
            timings["s3_get"] = _ms(t)
            with self._decode_budget.hold(decoded_pixels(data)):
                t = time.perf_counter()
                tensor = to_model_input(data, max_pixels=self._settings.max_image_pixels)
                timings["decode"] = _ms(t)
        except PermanentJobError as exc:
            self._finish_failed(job, exc.code, exc.message)
            return None
        return _Prepared(record=record, job=job, tensor=tensor, started=started, timings=timings)

    def _classify(self, ready: list[_Prepared]) -> list[str]:
        t = time.perf_counter()
        try:
            results = self._classifier().answers(
                np.stack([p.tensor for p in ready]), [p.job.options for p in ready]
            )
        except Exception:
            log.exception("inference failed; the batch goes back to the queue")
            return [p.record.message_id for p in ready]
        per_image = round((time.perf_counter() - t) * 1000 / len(ready), 2)
        for prepared, result in zip(ready, results, strict=True):
            prepared.predictions = result.predictions
            prepared.categories = result.categories
            prepared.timings["inference"] = per_image
            prepared.timings["total"] = _ms(prepared.started)
        return self._record(ready)

    def _succeed(self, prepared: _Prepared) -> JobRecord | None:
        return self._repo.succeed(
            prepared.job,
            predictions=prepared.predictions,
            categories=prepared.categories,
            model=self._model,
            timings_ms=prepared.timings,
        )

    def _record(self, ready: list[_Prepared]) -> list[str]:
        """Write the results (each a conditional put, concurrently), then announce them."""
        t = time.perf_counter()
        outcomes = self._overlap.map(self._succeed, ready)
        telemetry.observe_ms("result_write_ms", (time.perf_counter() - t) * 1000 / len(ready))
        failed: list[str] = []
        done: list[tuple[_Prepared, JobRecord]] = []
        for prepared, outcome in zip(ready, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.error(
                    "could not record the result",
                    exc_info=outcome,
                    extra={"job_id": prepared.job.job_id},
                )
                failed.append(prepared.record.message_id)
            # None: no longer PROCESSING (canceled meanwhile, or a dead letter failed it)
            elif outcome is not None:
                done.append((prepared, outcome))
                telemetry.count("jobs_succeeded")
                telemetry.observe_ms("classification_latency_ms", prepared.timings["total"])
                if "queue_wait" in prepared.timings:
                    telemetry.observe_ms("queue_wait_ms", prepared.timings["queue_wait"])
        if done:
            self._remember([job for _, job in done])
            failed.extend(self._announce(done))
        return failed

    def _remember(self, jobs: list[JobRecord]) -> None:
        """One BatchWriteItem for the batch; a cache that cannot be written only costs a later
        repeat its classification, so the jobs succeed all the same."""
        if self._cache is None:
            return
        try:
            self._cache.remember(jobs)
        except Exception:
            log.exception("could not remember the batch's answers")

    def _announce(self, done: list[tuple[_Prepared, JobRecord]]) -> list[str]:
        """Publish the batch's events together; hand back the messages whose event SNS did not
        accept (their redelivery finds the job finished and publishes its event again)."""
        t = time.perf_counter()
        try:
            unsent = self._publisher.publish_many([job for _, job in done])
        except Exception:
            log.exception("could not publish the batch's events; its messages go back")
            return [prepared.record.message_id for prepared, _ in done]
        telemetry.observe_ms("event_publish_ms", (time.perf_counter() - t) * 1000 / len(done))
        return [prepared.record.message_id for prepared, job in done if job.job_id in unsent]

    def _finish_failed(self, job: JobRecord, code: str, message: str) -> None:
        log.warning("job failed", extra={"job_id": job.job_id, "code": code})
        failed = self._repo.fail(job.job_id, code=code, message=message, generation=job.generation)
        if failed.job is not None:
            telemetry.count("jobs_failed", code=code)
            self._publisher.publish(failed.job)

    def _settle_unstarted(self, message: JobMessage, start: Transition) -> None:
        """A message whose job did not start: finished, gone, or of an earlier generation."""
        settle(start.current, message=message, publisher=self._publisher)


def settle(current: JobRecord | None, *, message: JobMessage, publisher: EventPublisher) -> None:
    """Acknowledge a message whose job is finished, gone or retried since.

    The attempt that finished the job may have died before its event went out, and nothing
    records that it did (a write per job to say so cost as much as the result's own write): the
    event is published again. Its id is the same, so receivers that saw it drop it, and webhooks
    already attempted for it are not sent twice.
    """
    if current is None:
        log.warning("message for an unknown job acknowledged", extra={"job_id": message.job_id})
    elif current.generation != message.generation:
        log.info("message of an earlier run acknowledged", extra={"job_id": message.job_id})
    elif current.status.terminal:
        publisher.publish(current)
