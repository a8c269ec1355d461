"""Caps on a tenant's unfinished work: jobs (``MAX_PENDING_JOBS``) and their pixels
(``MAX_PENDING_PIXELS``), so one tenant's burst of huge images cannot fill the classifier's
queue for everyone. A new job over either is refused with 429 and a code that says which.

The count comes from the jobs table's sparse index of unfinished jobs (one query, reading only
those jobs' keys and pixels). The index is eventually consistent, so requests racing each
other may pass a cap by the few jobs made in the index's lag; the rate limit bounds that.
"""

from __future__ import annotations

from chalicelib.errors import AppError
from chalicelib.job_store import JobRepository
from chalicelib.settings import Settings

RETRY_AFTER_S = 5  # what a refused client is told: by then a few jobs will have finished


class TooMuchPending(AppError):
    """The tenant has too much unfinished work (429)."""

    status = 429
    code = "too_many_pending_jobs"

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


class PendingCaps:
    """Refuses new jobs past the tenant's unfinished jobs or pixels."""

    def __init__(self, *, settings: Settings, repo: JobRepository) -> None:
        self._settings = settings
        self._repo = repo

    def check(self, owner: str, *, jobs: int = 1, pixels: int = 0) -> None:
        """Room for ``jobs`` more jobs of ``pixels`` in all, or ``TooMuchPending``."""
        s = self._settings
        open_jobs, open_pixels = self._repo.unfinished(owner, enough=s.max_pending_jobs)
        if open_jobs + jobs > s.max_pending_jobs:
            raise TooMuchPending(
                f"{open_jobs} of your jobs are unfinished and at most {s.max_pending_jobs} may "
                f"be; wait for some to finish (GET /jobs?status=PENDING lists them)",
                code="too_many_pending_jobs",
            )
        if open_pixels + pixels > s.max_pending_pixels:
            raise TooMuchPending(
                f"your unfinished jobs hold {open_pixels / 1e6:.0f} M pixels and at most "
                f"{s.max_pending_pixels / 1e6:.0f} M may wait at once; this image has "
                f"{pixels / 1e6:.0f} M; wait for some to finish",
                code="too_many_pending_pixels",
            )
