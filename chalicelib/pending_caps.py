"""Caps on a tenant's unfinished work: jobs (``MAX_PENDING_JOBS``) and their pixels
(``MAX_PENDING_PIXELS``), so one tenant's burst of huge images cannot fill the classifier's
queue for everyone. A new job over either is refused with 429 and a code that says which.

The count comes from the jobs table's sparse index of unfinished jobs (one query, reading only
those jobs' keys and pixels). The index is eventually consistent, so requests racing each
other may pass a cap by the few jobs made in the index's lag; the rate limit bounds that.

A container keeps each tenant's count for ``FRESH_S`` and adds the jobs it admits meanwhile, so
a busy tenant costs one query a second per container, not one per job. Jobs other containers
admit in that second are not seen (as with the index's lag); a refusal is only ever made on a
count read just then, so a tenant whose jobs have finished is never refused on an old count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.errors import AppError
from chalicelib.job_store import JobRepository
from chalicelib.settings import Settings

RETRY_AFTER_S = 5  # what a refused client is told: by then a few jobs will have finished
FRESH_S = 1.0  # how long a container trusts a count it read (plus what it admitted since)


class TooMuchPending(AppError):
    """The tenant has too much unfinished work (429)."""

    status = 429
    code = "too_many_pending_jobs"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


@dataclass
class _Count:
    jobs: int
    pixels: int
    read_at: float


class PendingCaps:
    """Refuses new jobs past the tenant's unfinished jobs or pixels."""

    def __init__(
        self,
        *,
        settings: Settings,
        repo: JobRepository,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._repo = repo
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._counts: dict[str, _Count] = {}

    def check(self, owner: str, *, jobs: int = 1, pixels: int = 0) -> None:
        """Room for ``jobs`` more jobs of ``pixels`` in all, or ``TooMuchPending``."""
        with self._lock:
            count = self._counts.get(owner)
            if (
                count
                and self._monotonic() - count.read_at < FRESH_S
                and self._refusal(count, jobs, pixels) is None
            ):
                count.jobs += jobs
                count.pixels += pixels
                return
        open_jobs, open_pixels = self._repo.unfinished(
            owner, enough=self._settings.max_pending_jobs
        )
        count = _Count(open_jobs, open_pixels, self._monotonic())
        if (refused := self._refusal(count, jobs, pixels)) is not None:
            raise refused
        with self._lock:
            count.jobs += jobs
            count.pixels += pixels
            self._counts[owner] = count

    def _refusal(self, count: _Count, jobs: int, pixels: int) -> TooMuchPending | None:
        """What adding ``jobs`` of ``pixels`` to ``count`` would be refused with, if anything."""
        s = self._settings
        if count.jobs + jobs > s.max_pending_jobs:
            return TooMuchPending(
                f"{count.jobs} of your jobs are unfinished and at most {s.max_pending_jobs} may "
                f"be; wait for some to finish (GET /jobs?status=PENDING lists them)",
                code="too_many_pending_jobs",
            )
        if count.pixels + pixels > s.max_pending_pixels:
            return TooMuchPending(
                f"your unfinished jobs hold {count.pixels / 1e6:.0f} M pixels and at most "
                f"{s.max_pending_pixels / 1e6:.0f} M may wait at once; this image has "
                f"{pixels / 1e6:.0f} M; wait for some to finish",
                code="too_many_pending_pixels",
            )
        return None
