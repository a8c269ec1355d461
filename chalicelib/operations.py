"""The operation table: every route the API serves, with what it takes and what it answers.

``chalicelib.routing`` registers the Chalice routes from it, and ``chalicelib.openapi`` builds the
document from it and the models of ``chalicelib.contract``. Nothing about a route's shape is
written anywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from chalicelib import contract as c
from chalicelib.webpage import ASSETS

IMAGE_MEDIA_TYPES = ("image/*", "application/octet-stream")


@dataclass(frozen=True)
class Body:
    """One media type a request body may have: a model (JSON or multipart), or raw bytes."""

    media_type: str
    model: type[BaseModel] | None = None


@dataclass(frozen=True)
class Link:
    """An OpenAPI link: a value of this answer that is a parameter of another operation."""

    name: str
    operation_id: str
    parameter: str
    expression: str


@dataclass(frozen=True)
class Reply:
    """A success answer: its status, and a JSON model or other media types."""

    status: int
    description: str
    model: type[BaseModel] | None = None
    media_types: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Operation:
    """One method on one path."""

    operation_id: str
    method: Literal["GET", "POST", "PATCH", "DELETE"]
    path: str
    summary: str
    replies: tuple[Reply, ...]
    errors: tuple[int, ...] = ()
    bodies: tuple[Body, ...] = ()
    query: type[c.Request] | None = None
    headers: type[c.Request] | None = None
    path_model: type[c.Request] | None = None
    public: bool = False

    @property
    def path_parameters(self) -> list[str]:
        """The names in ``{braces}`` in the path."""
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    def reply(self, status: int) -> Reply:
        """The success answer of that status."""
        for reply in self.replies:
            if reply.status == status:
                return reply
        raise KeyError(f"{self.operation_id} has no {status} answer")


def _job_links() -> tuple[Link, ...]:
    return tuple(
        Link(name, op, "job_id", "$response.body#/job_id")
        for name, op in (
            ("GetJob", "getJob"),
            ("CancelJob", "cancelJob"),
            ("RetryJob", "retryJob"),
            ("DeleteJob", "deleteJob"),
        )
    )


class StaticName(c.Request):
    """The web page's files, by name."""

    name: str = Field(description="the file's name", json_schema_extra={"enum": [*sorted(ASSETS)]})


_ACCEPTED = Reply(
    202, "Accepted: the job is queued", c.Accepted, headers=("Location",), links=_job_links()
)
_HTML = ("text/html",)
_EXPORT = ("text/csv", "application/x-ndjson")

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "health", "GET", "/health", "Liveness and the model's name",
        replies=(Reply(200, "OK", c.Health),), public=True,
    ),
    Operation(
        "ready", "GET", "/ready", "Readiness: S3, DynamoDB and SQS each answer",
        replies=(
            Reply(200, "Every dependency answers", c.Readiness),
            Reply(503, "A dependency does not answer (see `checks`)", c.Readiness),
        ),
        public=True,
    ),
    Operation(
        "submitJob", "POST", "/jobs", "Submit one image",
        replies=(
            _ACCEPTED,
            Reply(
                200,
                "The job is finished: answered from the cache (see `cached_from`), or within "
                "the `Prefer: wait=N` asked for",
                c.JobDetail,
                headers=("Preference-Applied", "Location"),
            ),
        ),
        errors=(400, 409, 413, 415, 503),
        bodies=(
            *(Body(media) for media in IMAGE_MEDIA_TYPES),
            Body("multipart/form-data", c.SubmitForm),
            Body("application/json", c.SubmitJson),
        ),
        query=c.SubmitQuery,
        headers=c.SubmitHeaders,
    ),
    Operation(
        "listJobs", "GET", "/jobs", "The caller's jobs, newest first",
        replies=(Reply(200, "A page of jobs", c.JobPage),),
        errors=(400, 503),
        query=c.ListJobsQuery,
    ),
    Operation(
        "exportJobs", "GET", "/jobs/export",
        "The caller's jobs, newest first, as CSV or JSON Lines (one row or line per job)",
        replies=(
            Reply(
                200,
                "The file; `X-Next-Token` when more jobs follow",
                media_types=_EXPORT,
                headers=("Content-Disposition", "X-Next-Token"),
            ),
        ),
        errors=(400, 503),
        query=c.ExportJobsQuery,
    ),
    Operation(
        "getJob", "GET", "/jobs/{job_id}", "One job; with ?wait=N, once it is finished",
        replies=(Reply(200, "The job", c.JobDetail),),
        errors=(400, 404, 503),
        query=c.WaitQuery,
    ),
    Operation(
        "deleteJob", "DELETE", "/jobs/{job_id}", "Remove the job's record and image",
        replies=(Reply(204, "Deleted"),),
        errors=(404, 503),
    ),
    Operation(
        "cancelJob", "POST", "/jobs/{job_id}/cancel",
        "A PENDING or PROCESSING job CANCELED (it never succeeds afterwards)",
        replies=(Reply(200, "The job, CANCELED", c.JobDetail),),
        errors=(404, 409, 503),
    ),
    Operation(
        "retryJob", "POST", "/jobs/{job_id}/retry", "A FAILED job back to PENDING, queued again",
        replies=(_ACCEPTED,),
        errors=(404, 409, 503),
    ),
    Operation(
        "submitBatch", "POST", "/batches", "Many images at once",
        replies=(
            Reply(
                202,
                "Accepted: one job per valid file",
                c.BatchAccepted,
                headers=("Location",),
                links=(Link("GetBatch", "getBatch", "batch_id", "$response.body#/batch_id"),),
            ),
        ),
        errors=(400, 413, 503),
        bodies=(Body("multipart/form-data", c.BatchForm),),
    ),
    Operation(
        "getBatch", "GET", "/batches/{batch_id}", "A batch; with ?wait=N, once it is finished",
        replies=(Reply(200, "The batch", c.Batch),),
        errors=(400, 404, 503),
        query=c.WaitQuery,
    ),
    Operation(
        "cancelBatch", "POST", "/batches/{batch_id}/cancel",
        "Cancel the batch's unfinished jobs; its finished ones stay as they are",
        replies=(Reply(200, "The batch", c.Batch),),
        errors=(404, 503),
    ),
    Operation(
        "exportBatch", "GET", "/batches/{batch_id}/results",
        "The batch's results as CSV or JSON Lines, one row or line per job",
        replies=(Reply(200, "The file", media_types=_EXPORT, headers=("Content-Disposition",)),),
        errors=(400, 404, 503),
        query=c.ExportQuery,
    ),
    Operation(
        "createUpload", "POST", "/uploads", "A presigned S3 POST for an image too big for /jobs",
        replies=(Reply(201, "The upload form", c.Upload),),
        errors=(400, 413, 415, 503),
        bodies=(Body("application/json", c.UploadRequest),),
    ),
    Operation(
        "createWebhook", "POST", "/webhooks", "Subscribe a URL to job events",
        replies=(
            Reply(
                201,
                "The subscription, with its signing secret",
                c.NewWebhook,
                links=(Link("DeleteWebhook", "deleteWebhook", "webhook_id", "$response.body#/id"),),
            ),
        ),
        errors=(400, 409, 413, 503),
        bodies=(Body("application/json", c.WebhookRequest),),
    ),
    Operation(
        "listWebhooks", "GET", "/webhooks", "The caller's subscriptions",
        replies=(Reply(200, "Subscriptions (no secrets)", c.WebhookList),),
        errors=(503,),
    ),
    Operation(
        "updateWebhook", "PATCH", "/webhooks/{webhook_id}",
        "Enable a subscription again (its failures forgotten), or disable it",
        replies=(Reply(200, "The subscription", c.Webhook),),
        errors=(400, 404, 413, 503),
        bodies=(Body("application/json", c.WebhookUpdate),),
    ),
    Operation(
        "listWebhookDeliveries", "GET", "/webhooks/{webhook_id}/deliveries",
        "The subscription's deliveries, newest event first, each with its attempts",
        replies=(Reply(200, "A page of deliveries", c.DeliveryPage),),
        errors=(400, 404, 503),
        query=c.PageQuery,
    ),
    Operation(
        "redeliverWebhook", "POST", "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        "Send a delivery again: the same body and webhook-id, signed anew",
        replies=(Reply(202, "Queued", c.WebhookDelivery),),
        errors=(404, 409, 503),
    ),
    Operation(
        "deleteWebhook", "DELETE", "/webhooks/{webhook_id}", "Remove a subscription",
        replies=(Reply(204, "Deleted"),),
        errors=(404, 503),
    ),
    Operation(
        "rotateWebhookSecret", "POST", "/webhooks/{webhook_id}/rotate-secret",
        "A new signing secret; the previous one still signs for 24 hours",
        replies=(Reply(200, "The subscription with its new secret", c.NewWebhook),),
        errors=(404, 503),
    ),
    Operation(
        "getAccount", "GET", "/account", "The caller's tenant and webhook signing secret",
        replies=(Reply(200, "The account", c.Account),),
        errors=(503,),
    ),
    Operation(
        "getUsage", "GET", "/account/usage",
        "Jobs by outcome, images, bytes and webhook deliveries per UTC day",
        replies=(Reply(200, "The last `days` days, oldest first, and their total", c.Usage),),
        errors=(400, 503),
        query=c.UsageQuery,
    ),
    Operation(
        "openapi", "GET", "/openapi.json", "This document",
        replies=(Reply(200, "OpenAPI 3.1", media_types=("application/json",)),),
        public=True,
    ),
    Operation(
        "docs", "GET", "/docs", "This document, readable, with no outside resources",
        replies=(Reply(200, "HTML", media_types=_HTML),), public=True,
    ),
    Operation(
        "webPage", "GET", "/", "The web page: upload images, watch their jobs, retry",
        replies=(Reply(200, "HTML", media_types=_HTML),), public=True,
    ),
    Operation(
        "webPageFile", "GET", "/static/{name}", "The web page's script and style sheet",
        replies=(
            Reply(
                200,
                "The file",
                media_types=tuple(sorted({m.split(";")[0] for m in ASSETS.values()})),
            ),
        ),
        errors=(404,),
        path_model=StaticName,
        public=True,
    ),
)  # fmt: skip

BY_ID = {op.operation_id: op for op in OPERATIONS}
