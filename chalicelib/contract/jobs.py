"""Jobs: submitting one image, reading, listing and retrying jobs."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field

from chalicelib.contract.common import (
    MAX_IDEMPOTENCY_KEY,
    MAX_URL_LENGTH,
    MAX_WAIT_S,
    EventType,
    Invalid,
    JobStatus,
    PageQuery,
    Request,
    Response,
    Timestamp,
)

MAX_TOP_K = 20
DEFAULT_TOP_K = 5
MAX_EXPORT = 1000  # rows of one GET /jobs/export answer

TopK = Annotated[
    int,
    Field(ge=1, le=MAX_TOP_K, description=f"how many labels to keep, 1-{MAX_TOP_K}"),
    Invalid("invalid_top_k", f"top_k must be a whole number from 1 to {MAX_TOP_K}"),
]
MinConfidence = Annotated[
    float,
    Field(ge=0, le=1, description="labels and categories less probable than this are left out"),
    Invalid("invalid_min_confidence", "min_confidence must be a number from 0 to 1"),
]
UseCache = Annotated[
    bool,
    Field(
        description="`false`: classify even when the same image, with the same options, was "
        "classified for this tenant before"
    ),
    Invalid("invalid_cache", "cache must be true or false"),
]


class Model(Response):
    """The model that classified the image."""

    name: str
    version: str


class Prediction(Response):
    """One ImageNet class and its probability."""

    class_id: int = Field(ge=0, le=999)
    label: str
    probability: float = Field(ge=0, le=1)
    parents: list[str] = Field(
        default_factory=list, description="the categories this class belongs to, narrowest first"
    )


class Category(Response):
    """A category people use (cat, vehicle, beverage…): the summed probability of its classes."""

    name: str
    probability: float = Field(ge=0, le=1, description="summed over the whole softmax")


class JobOptions(Response):
    """How the job's answer is cut: how many labels, and from what probability on."""

    top_k: TopK = DEFAULT_TOP_K
    min_confidence: MinConfidence = 0.0


class JobError(Response):
    """Why a job FAILED."""

    code: str
    message: str


class Job(Response):
    """A job as the API shows it (and as job events carry it)."""

    job_id: str
    status: JobStatus
    attempts: int = Field(ge=0)
    created_at: Timestamp
    updated_at: Timestamp
    content_type: str
    size_bytes: int = Field(ge=0)
    batch_id: str | None = None
    source: Literal["api", "upload", "s3"] = "api"
    filename: str | None = None
    webhook_url: str | None = None
    options: JobOptions = Field(default_factory=JobOptions)
    image_sha256: str | None = Field(default=None, description="SHA-256 of the image's bytes")
    predictions: list[Prediction] | None = Field(default=None, max_length=MAX_TOP_K)
    categories: list[Category] | None = Field(
        default=None, description="most probable first; those under 0.1 % are left out"
    )
    cached_from: str | None = Field(
        default=None, description="the earlier job whose result this one reuses (same image)"
    )
    model: Model | None = None
    timings_ms: dict[str, float] = Field(default_factory=dict)
    error: JobError | None = None


DeliveryState = Literal["pending", "retrying", "delivered", "failed", "cancelled"]


class Delivery(Response):
    """The state of one webhook target's delivery of a job's latest event."""

    target: str = Field(description="`job` (the job's webhook_url) or a subscription id")
    url: str
    event_type: EventType
    state: DeliveryState
    attempts: int = Field(ge=0)
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: Timestamp | None = None
    updated_at: Timestamp


class JobDetail(Job):
    """``GET /jobs/{job_id}``: the job, a short-lived URL of its image, its webhook deliveries."""

    image_url: str = Field(description="presigned, short-lived")
    webhooks: list[Delivery]


class Accepted(Response):
    """``202``: the job is recorded and queued."""

    job_id: str
    status: JobStatus
    status_url: str


class JobPage(Response):
    """A page of the caller's jobs, newest first."""

    jobs: list[Job]
    next_token: str | None = None


class OptionFields(Request):
    """The options of a new job, given as query parameters, form fields or JSON fields."""

    top_k: TopK = DEFAULT_TOP_K
    min_confidence: MinConfidence = 0.0
    cache: UseCache = True


class SubmitJson(OptionFields):
    """``POST /jobs`` as JSON."""

    image_base64: Annotated[
        str,
        Field(min_length=1, description="the image, base64 or a data: URL"),
        Invalid("missing_image", "image_base64 (a base64 string) is required"),
    ]
    webhook_url: Annotated[
        str | None,
        Field(max_length=MAX_URL_LENGTH, description="https URL told when the job ends"),
        Invalid("invalid_webhook_url", "webhook_url must be a string"),
    ] = None


class SubmitForm(OptionFields):
    """``POST /jobs`` as ``multipart/form-data``."""

    image: bytes = Field(description="the image file")
    webhook_url: str | None = Field(default=None, description="https URL told when the job ends")


class SubmitQuery(OptionFields):
    """``POST /jobs`` query parameters (a form or JSON field of the same name wins)."""

    webhook_url: str | None = Field(default=None, description="https URL told when the job ends")


class SubmitHeaders(Request):
    """``POST /jobs`` headers."""

    prefer: str | None = Field(
        default=None,
        alias="Prefer",
        max_length=256,
        description="RFC 7240: `wait=N` (N ≤ 20) answers 200 with the finished job if it ends "
        "within N seconds, else the usual 202",
    )
    idempotency_key: Annotated[
        str | None,
        Field(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_IDEMPOTENCY_KEY,
            pattern=r"^[\x20-\x7e]+$",
            description="the same key from the same tenant returns the same job",
        ),
        Invalid(
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
        ),
    ] = None


class WaitQuery(Request):
    """``?wait=N``: answer as soon as the resource is finished, or after N seconds with its
    current state."""

    wait: Annotated[
        float | None,
        Field(gt=0, le=MAX_WAIT_S, description="seconds to wait for the end, at most 20"),
        Invalid(
            "invalid_wait",
            f"wait must be a number of seconds, more than 0 and at most {MAX_WAIT_S:g}",
        ),
    ] = None


class ListJobsQuery(PageQuery):
    """``GET /jobs`` query parameters: a page, optionally of one status."""

    status: Annotated[
        JobStatus | None,
        BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value),
        Field(description="only jobs in this state"),
        Invalid("invalid_status", "status must be one of " + ", ".join(JobStatus)),
    ] = None


ExportFormat = Literal["csv", "jsonl"]


class ExportQuery(Request):
    """``?format=``: CSV (one row per job) or JSON Lines (one object per line)."""

    format: Annotated[
        ExportFormat,
        Field(description="`csv` (text/csv) or `jsonl` (application/x-ndjson)"),
        Invalid("invalid_format", "format must be csv or jsonl"),
    ] = "csv"


class ExportJobsQuery(ExportQuery, ListJobsQuery):
    """``GET /jobs/export``: the caller's jobs, newest first, as a file."""

    limit: Annotated[
        int,
        Field(ge=1, le=MAX_EXPORT),
        Invalid("invalid_limit", f"limit must be 1..{MAX_EXPORT}"),
    ] = MAX_EXPORT


class ExportRow(Response):
    """One job in an export: a CSV row (categories as `name probability; …`, the error as
    `code: message`) or a JSON Lines object."""

    job_id: str
    filename: str | None = None
    status: JobStatus
    created_at: Timestamp
    label: str | None = Field(default=None, description="the most probable label")
    probability: float | None = Field(default=None, ge=0, le=1)
    categories: list[Category] = Field(default_factory=list)
    cached_from: str | None = None
    error: JobError | None = None
