"""What every part of the contract shares: the base models, the ``Invalid`` marker, limits,
the job statuses and the error body."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

MAX_PAGE = 100
MAX_WAIT_S = 20.0  # long polls: API Gateway ends a request at 29 s
DEFAULT_PAGE = 20
MAX_IDEMPOTENCY_KEY = 255
MAX_FILENAME = 255
MAX_URL_LENGTH = 2048
UPLOAD_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff")
EVENT_TYPES = ("job.succeeded", "job.failed", "job.canceled")


@dataclass(frozen=True)
class Invalid:
    """The error a field's bad or missing value answers with (a 4xx ``AppError``)."""

    code: str
    message: str
    status: int = 400


class JobStatus(StrEnum):
    """PENDING → PROCESSING → SUCCEEDED | FAILED; PENDING or PROCESSING → CANCELED through
    cancel; FAILED → PENDING only through retry."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"

    @property
    def terminal(self) -> bool:
        """True for SUCCEEDED, FAILED and CANCELED: the job will not change by itself."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
EventType = Literal["job.succeeded", "job.failed", "job.canceled"]
UploadType = Literal[
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"
]


class Response(BaseModel):
    """A response body: every field is always present (``null`` when it has no value)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Request(BaseModel):
    """A request body, query or header set: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class ErrorDetail(Response):
    """A machine-readable code and a sentence for people."""

    code: str
    message: str


class Error(Response):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail


class PageQuery(Request):
    """``limit`` and ``next_token`` of a paged listing."""

    limit: Annotated[
        int,
        Field(ge=1, le=MAX_PAGE),
        Invalid("invalid_limit", f"limit must be 1..{MAX_PAGE}"),
    ] = DEFAULT_PAGE
    next_token: Annotated[
        str | None,
        Field(max_length=4096, description="from the previous page"),
        Invalid("invalid_next_token", "next_token is not valid"),
    ] = None
