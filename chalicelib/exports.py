"""Results taken away in one file: a batch's jobs, or a filtered listing of a tenant's jobs, as
CSV (one row per job) or JSON Lines (one ``ExportRow`` object per line).

In CSV, a job's categories read ``cat 0.92; mammal 0.95`` and its error ``code: message``. A cell
that a spreadsheet would take for a formula (a file name starting with ``=``, ``+``, ``-`` or
``@``) is prefixed with ``'``, as OWASP advises against CSV injection; JSON Lines keeps values
as they are.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Sequence
from dataclasses import dataclass

from chalicelib.batches import Batches
from chalicelib.contract import ExportFormat, ExportJobsQuery, ExportRow
from chalicelib.job_store import JobRecord, JobRepository

CONTENT_TYPES: dict[str, str] = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
COLUMNS = tuple(ExportRow.model_fields)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportFile:
    """An export's body, its media type and the name to save it under."""

    body: str
    media_type: str
    filename: str
    next_token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        """``Content-Type``, ``Content-Disposition`` and, when more jobs follow,
        ``X-Next-Token``."""
        headers = {
            "Content-Type": f"{self.media_type}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{self.filename}"',
        }
        if self.next_token:
            headers["X-Next-Token"] = self.next_token
        return headers


def export_row(job: JobRecord) -> ExportRow:
    """A job as one row: its most probable label, categories and error."""
    top = job.predictions[0] if job.predictions else None
    return ExportRow(
        job_id=job.job_id,
        filename=job.filename,
        status=job.status,
        created_at=job.created_at,
        label=top.label if top else None,
        probability=top.probability if top else None,
        categories=job.categories or [],
        cached_from=job.cached_from,
        error=job.error,
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def to_csv(rows: Sequence[ExportRow]) -> str:
    """The rows as CSV with a header line (RFC 4180 quoting, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        categories = "; ".join(f"{c.name} {c.probability:g}" for c in row.categories)
        error = f"{row.error.code}: {row.error.message}" if row.error else None
        values = {**row.model_dump(), "categories": categories, "error": error}
        values["status"] = row.status.value
        writer.writerow([_cell(values[column]) for column in COLUMNS])
    return out.getvalue()


def to_jsonl(rows: Sequence[ExportRow]) -> str:
    """The rows as JSON Lines: one object per line."""
    return "".join(row.model_dump_json() + "\n" for row in rows)


def render(jobs: Sequence[JobRecord], *, fmt: ExportFormat, name: str) -> ExportFile:
    """The jobs as a file named ``<name>.<fmt>``."""
    rows = [export_row(job) for job in jobs]
    body = to_csv(rows) if fmt == "csv" else to_jsonl(rows)
    return ExportFile(body=body, media_type=CONTENT_TYPES[fmt], filename=f"{name}.{fmt}")


class Exports:
    """A batch's results, or a page of the tenant's jobs, as one file."""

    def __init__(self, *, batches: Batches, repo: JobRepository) -> None:
        self._batches = batches
        self._repo = repo

    def batch(self, *, owner: str, batch_id: str, fmt: ExportFormat) -> ExportFile:
        """One row per job of the batch, in the order of its files; 404 for anyone else's."""
        record = self._batches.record(owner=owner, batch_id=batch_id)
        return render(self._batches.jobs(record), fmt=fmt, name=f"batch-{batch_id}")

    def jobs(self, *, owner: str, query: ExportJobsQuery) -> ExportFile:
        """The caller's jobs, newest first, of one status if asked; ``limit`` of them, and the
        token of the rest."""
        jobs, token = self._repo.list_for_owner(
            owner, status=query.status, limit=query.limit, next_token=query.next_token
        )
        name = "jobs" + (f"-{query.status.value.lower()}" if query.status else "")
        return dataclasses.replace(render(jobs, fmt=query.format, name=name), next_token=token)
