"""Batches of images and presigned uploads."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from chalicelib.contract.common import (
    MAX_FILENAME,
    UPLOAD_TYPES,
    ErrorDetail,
    Invalid,
    Response,
    Timestamp,
    UploadType,
)
from chalicelib.contract.jobs import Job, OptionFields


class Rejected(Response):
    """A file of a batch that did not become a job, and why."""

    index: int = Field(ge=0)
    filename: str | None = None
    error: ErrorDetail


class BatchAccepted(Response):
    """``202``: one job per valid file."""

    batch_id: str
    job_ids: list[str]
    rejected: list[Rejected]
    status_url: str


class Progress(Response):
    """How many of a batch's jobs are in each state."""

    total: int = Field(ge=0)
    pending: int = Field(ge=0)
    processing: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    failed: int = Field(ge=0)
    canceled: int = Field(ge=0)


class Batch(Response):
    """A batch: its status, progress and jobs."""

    batch_id: str
    created_at: Timestamp
    status: Literal["waiting", "processing", "completed", "completed_with_errors", "canceled"]
    progress: Progress
    rejected: list[Rejected]
    jobs: list[Job]


class BatchForm(OptionFields):
    """``POST /batches``: one ``images`` part per file; the options apply to each."""

    images: list[bytes] = Field(description="one part per image file")
    webhook_url: str | None = Field(default=None, description="https URL told when each job ends")


class UploadRequest(OptionFields):
    """``POST /uploads``: the image's type and name, and the job's options."""

    content_type: Annotated[
        UploadType,
        Invalid(
            "unsupported_content_type",
            f"content_type must be one of {', '.join(UPLOAD_TYPES)}",
            status=415,
        ),
    ]
    filename: Annotated[
        str | None,
        Field(max_length=MAX_FILENAME),
        Invalid("invalid_filename", f"filename must be a string of at most {MAX_FILENAME} chars"),
    ] = None


class UploadForm(Response):
    """Where and how to POST the image (a presigned S3 POST)."""

    url: str
    fields: dict[str, str]
    method: Literal["POST"] = "POST"
    max_bytes: int


class Upload(Response):
    """``201``: the job id to follow and the form to upload the image with."""

    job_id: str
    upload: UploadForm
    expires_in: int
    status_url: str
