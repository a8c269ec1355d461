"""Fault injection for the local runtime only: ``FAULT_RATE`` and ``CRASH_RATE``.

The classifier is rebuilt around collaborators that fail on purpose; nothing in ``chalicelib``
knows. A deployed function refuses to start with either setting (``chalicelib.settings``).

- ``FAULT_RATE``: that share of image reads fail as S3 throttling would (a transient error,
  after the job started): the message goes back to the queue and is handed over again.
- ``CRASH_RATE``: each result write may kill the whole batch first, as a timeout or an
  out-of-memory kill would: the results written so far stay, the handler dies, and SQS hands
  the whole batch over again (tuned so that about that share of batches of ten die).
"""

from __future__ import annotations

import dataclasses
import random
import threading

from chalicelib.classify import BatchClassifier, Images, Jobs
from chalicelib.contract import Category, Model, Prediction
from chalicelib.errors import TransientError
from chalicelib.job_store import JobRecord, Transition
from chalicelib.settings import Settings
from chalicelib.wiring import Services, classifier_loader

BATCH = 10


class SimulatedCrash(BaseException):
    """The classifier's process dying mid-batch: nothing in the handler catches it."""


class _Dice:
    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def roll(self, rate: float) -> bool:
        with self._lock:
            return self._rng.random() < rate


class FlakyImages:
    """Image reads that fail transiently at ``rate``."""

    def __init__(self, inner: Images, *, rate: float, dice: _Dice) -> None:
        self._inner = inner
        self._rate = rate
        self._dice = dice

    def get(self, key: str) -> bytes:
        """The image, unless this read is one that fails."""
        if self._dice.roll(self._rate):
            raise TransientError(f"injected fault (FAULT_RATE={self._rate})")
        return self._inner.get(key)


class CrashingJobs:
    """Job transitions whose result writes may crash the batch."""

    def __init__(self, inner: Jobs, *, rate: float, dice: _Dice) -> None:
        self._inner = inner
        self._per_write = 1 - (1 - rate) ** (1 / BATCH)  # ~rate of batches of ten crash
        self._dice = dice

    def start(self, job_id: str, *, generation: int) -> Transition:
        """As the real store does."""
        return self._inner.start(job_id, generation=generation)

    def fail(
        self, job_id: str, *, code: str, message: str, generation: int | None = None
    ) -> Transition:
        """As the real store does."""
        return self._inner.fail(job_id, code=code, message=message, generation=generation)

    def succeed(
        self,
        started: JobRecord,
        *,
        predictions: list[Prediction],
        model: Model,
        timings_ms: dict[str, float],
        categories: list[Category] | None = None,
    ) -> JobRecord | None:
        """The result, unless the batch dies before it is written."""
        if self._dice.roll(self._per_write):
            raise SimulatedCrash(f"injected crash before the result of {started.job_id}")
        return self._inner.succeed(
            started,
            predictions=predictions,
            model=model,
            timings_ms=timings_ms,
            categories=categories,
        )


def with_faults(services: Services, settings: Settings) -> Services:
    """``services`` with the classifier rebuilt around failing collaborators, if asked for."""
    if not (settings.fault_rate or settings.crash_rate):
        return services
    dice = _Dice(settings.fault_seed)
    a = services.adapters
    images: Images = a.images
    jobs: Jobs = a.repo
    if settings.fault_rate:
        images = FlakyImages(images, rate=settings.fault_rate, dice=dice)
    if settings.crash_rate:
        jobs = CrashingJobs(jobs, rate=settings.crash_rate, dice=dice)
    classify = BatchClassifier(
        settings=settings,
        repo=jobs,
        images=images,
        publisher=a.publisher,
        classifier=classifier_loader(settings),
        model=services.model,
        cache=services.cache,
    )
    return dataclasses.replace(services, classify=classify)
