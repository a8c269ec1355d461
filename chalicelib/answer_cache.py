"""Answers reused: the same image bytes, for the same tenant, answers and options, are answered
from the job that was classified for them before, without a classification.

An entry lives in the tenants table under the tenant's partition, so it is never read for
another tenant: ``ANSWER#<answers version>#<image sha256>#<top_k>#<min_confidence>`` → the id of
the job whose result it reuses. The answers version names the model and the categories file, so
a new model or a new categories file simply finds no entries. An entry points at a job, it does
not copy the result: a job deleted since (or expired) finds its entry stale, and the entry is
removed on condition that it still points at that job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from chalicelib import telemetry
from chalicelib.contract import JobOptions, JobStatus
from chalicelib.job_store import JobRecord, JobRepository, utc_now
from chalicelib.tenant_table import TenantTable, tenant_partition

log = logging.getLogger(__name__)


class AnswerCache:
    """Find the classified job an image was answered by; remember classified jobs."""

    def __init__(self, *, table: TenantTable, repo: JobRepository, version: str) -> None:
        self._table = table
        self._repo = repo
        self._version = version

    def _key(self, image_sha256: str, options: JobOptions) -> str:
        return f"ANSWER#{self._version}#{image_sha256}#{options.top_k}#{options.min_confidence:.6g}"

    def find(self, job: JobRecord) -> JobRecord | None:
        """The SUCCEEDED job of the same tenant, image and options, or None.

        The entry is read eventually consistent (half the price): an entry a few hundred
        milliseconds old that is not seen yet only costs a classification.
        """
        if not job.image_sha256:
            return None
        pk, sk = tenant_partition(job.owner), self._key(job.image_sha256, job.options)
        entry = self._table.get(pk, sk, consistent=False)
        if entry is None:
            return None
        source = self._repo.get(str(entry["job_id"]))
        if source is None or source.owner != job.owner or source.status is not JobStatus.SUCCEEDED:
            self._forget(pk, sk, str(entry["job_id"]))  # deleted or expired since
            return None
        return source

    def forget(self, job: JobRecord) -> None:
        """Remove the entry that points at ``job`` (it is being deleted); an entry that a newer
        job of the same image replaced stays."""
        if job.image_sha256 and job.status is JobStatus.SUCCEEDED and not job.cached_from:
            key = self._key(job.image_sha256, job.options)
            self._forget(tenant_partition(job.owner), key, job.job_id)

    def _forget(self, pk: str, sk: str, job_id: str) -> None:
        self._table.delete_if(
            pk, sk, condition="#job = :job", names={"#job": "job_id"}, values={":job": job_id}
        )

    def answer(self, job: JobRecord) -> JobRecord:
        """``job`` SUCCEEDED with the result of the job that answered its image before, or
        ``job`` unchanged (PENDING) when there is none."""
        started = time.perf_counter()
        source = self.find(job)
        if source is None:
            return job
        telemetry.count("jobs_cached")
        return job.model_copy(
            update={
                "status": JobStatus.SUCCEEDED,
                "updated_at": utc_now(),
                "predictions": source.predictions,
                "categories": source.categories,
                "model": source.model,
                "cached_from": source.job_id,
                "timings_ms": {"cache": round((time.perf_counter() - started) * 1000, 2)},
            }
        )

    def remember(self, jobs: Sequence[JobRecord]) -> None:
        """Make each classified job the answer to its image and options (25 to a request).

        A later job of the same image replaces the entry: it lives longer."""
        entries = [
            (
                tenant_partition(job.owner),
                self._key(job.image_sha256, job.options),
                {"job_id": job.job_id, "expires_at": job.expires_at},
            )
            for job in jobs
            if job.image_sha256 and job.status is JobStatus.SUCCEEDED and not job.cached_from
        ]
        if entries:
            self._table.put_many(entries)
