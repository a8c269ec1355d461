"""The HTTP contract as types: every request body, query, header set and response, written once.

Requests are validated with these models (``chalicelib.routing``), responses are serialised from
them, and ``chalicelib.openapi`` builds the OpenAPI document from them and the operation table, so
a generated client and the service cannot disagree. A field whose bad value has its own error
code carries an ``Invalid`` marker; the code, status and message come from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

MAX_PAGE = 100
DEFAULT_PAGE = 20
MAX_IDEMPOTENCY_KEY = 255
MAX_FILENAME = 255
MAX_URL_LENGTH = 2048
UPLOAD_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff")
EVENT_TYPES = ("job.succeeded", "job.failed")


@dataclass(frozen=True)
class Invalid:
    """The error a field's bad or missing value answers with (a 4xx ``AppError``)."""

    code: str
    message: str
    status: int = 400


class JobStatus(StrEnum):
    """PENDING → PROCESSING → SUCCEEDED | FAILED; FAILED → PENDING only through retry."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        """True for SUCCEEDED and FAILED."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
EventType = Literal["job.succeeded", "job.failed"]
UploadType = Literal[
    "image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"
]


class Response(BaseModel):
    """A response body: every field is always present (``null`` when it has no value)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class Request(BaseModel):
    """A request body, query or header set: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --- errors ---------------------------------------------------------------------------------


class ErrorDetail(Response):
    """A machine-readable code and a sentence for people."""

    code: str
    message: str


class Error(Response):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail


# --- jobs -----------------------------------------------------------------------------------


class Model(Response):
    """The model that classified the image."""

    name: str
    version: str


class Prediction(Response):
    """One ImageNet class and its probability."""

    class_id: int = Field(ge=0, le=999)
    label: str
    probability: float = Field(ge=0, le=1)


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
    predictions: list[Prediction] | None = Field(default=None, max_length=5)
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


class SubmitJson(Request):
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


class SubmitForm(Request):
    """``POST /jobs`` as ``multipart/form-data``."""

    image: bytes = Field(description="the image file")
    webhook_url: str | None = Field(default=None, description="https URL told when the job ends")


class SubmitQuery(Request):
    """``POST /jobs`` query parameters (for raw image bodies)."""

    webhook_url: str | None = Field(default=None, description="https URL told when the job ends")


class SubmitHeaders(Request):
    """``POST /jobs`` headers."""

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


class ListJobsQuery(Request):
    """``GET /jobs`` query parameters."""

    status: Annotated[
        JobStatus | None,
        BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value),
        Field(description="only jobs in this state"),
        Invalid("invalid_status", "status must be one of " + ", ".join(JobStatus)),
    ] = None
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


# --- batches --------------------------------------------------------------------------------


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


class Batch(Response):
    """A batch: its status, progress and jobs."""

    batch_id: str
    created_at: Timestamp
    status: Literal["waiting", "processing", "completed", "completed_with_errors"]
    progress: Progress
    rejected: list[Rejected]
    jobs: list[Job]


class BatchForm(Request):
    """``POST /batches``: one ``images`` part per file."""

    images: list[bytes] = Field(description="one part per image file")
    webhook_url: str | None = Field(default=None, description="https URL told when each job ends")


# --- uploads --------------------------------------------------------------------------------


class UploadRequest(Request):
    """``POST /uploads``."""

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


# --- webhooks -------------------------------------------------------------------------------


def _all_event_types() -> list[EventType]:
    return ["job.succeeded", "job.failed"]


class WebhookRequest(Request):
    """``POST /webhooks``."""

    url: Annotated[
        str,
        Field(max_length=MAX_URL_LENGTH),
        Invalid("invalid_webhook_url", f"url must be a URL of at most {MAX_URL_LENGTH} chars"),
    ]
    events: Annotated[
        list[EventType],
        Field(min_length=1),
        Invalid("invalid_events", f"events must be a non-empty list of {', '.join(EVENT_TYPES)}"),
    ] = Field(default_factory=_all_event_types)


class Webhook(Response):
    """A webhook subscription (its secret is shown only when it is created)."""

    id: str
    url: str
    events: list[EventType]
    created_at: Timestamp


class NewWebhook(Webhook):
    """``201``: the subscription with its signing secret."""

    secret: str


class WebhookList(Response):
    """The caller's subscriptions."""

    webhooks: list[Webhook]


class Account(Response):
    """The caller's tenant and the secret its per-job webhooks are signed with."""

    tenant: str
    webhook_signing_secret: str


class JobEvent(Response):
    """The body of an SNS job event and of every webhook delivery."""

    id: str = Field(description="the same on every delivery of this event")
    type: EventType
    created_at: Timestamp
    job: Job = Field(description="the job as `GET /jobs/{job_id}` shows it, without `image_url`")


class Health(Response):
    """Liveness."""

    status: Literal["ok"] = "ok"
    model: Model
