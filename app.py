"""Routes and event handlers only: each is a few lines that call ``chalicelib``."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Chalice, Request, Response, SQSEvent

from chalicelib.errors import AppError, ServiceUnavailable, TransientError
from chalicelib.openapi import docs_page, openapi_document
from chalicelib.service import QueueMessage
from chalicelib.settings import (
    DEAD_LETTER_QUEUE_NAME,
    INGEST_QUEUE_NAME,
    JOBS_QUEUE_NAME,
    NOTIFY_QUEUE_NAME,
    WEBHOOKS_QUEUE_NAME,
)
from chalicelib.telemetry import configure_logging
from chalicelib.telemetry import flush as flush_metrics
from chalicelib.webpage import StaticFile, index_page, static_file
from chalicelib.wiring import get_service, get_services

configure_logging()
app = Chalice(app_name="imgcls")
app.log.setLevel(logging.INFO)
# API Gateway must pass image and multipart bodies through as binary.
app.api.binary_types.extend(["image/*", "multipart/form-data"])

log = logging.getLogger("imgcls")
# No annotated assignments at module level: `chalice package`'s policy analyzer fails on them.
_owner = contextvars.ContextVar[str]("owner")
PUBLIC_ROUTES = set[tuple[str, str]]()  # (path, method) served without an API key


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=body,
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def route(
    path: str, *, public: bool = False, **options: Any
) -> Callable[[Callable[..., Response]], Any]:
    """``app.route`` plus the one API-key check and the one place where domain errors become
    JSON HTTP errors. Every route needs a key unless registered ``public``.

    (Chalice turns view exceptions into its own 500 before HTTP middleware sees them, so the
    translation wraps each view instead; the check runs the same locally and behind API
    Gateway.)
    """

    def register(view: Callable[..., Response]) -> Any:
        @functools.wraps(view)
        def wrapped(**kwargs: Any) -> Response:
            token = _owner.set("")  # nobody, until the key says who
            try:
                if not public:
                    _owner.set(get_services().auth.authenticate(_request().headers))
                return view(**kwargs)
            except AppError as exc:
                return _json(exc.to_dict(), exc.status, _retry_after(exc))
            except TransientError as exc:
                log.warning("dependency failing: %s", exc)
                error = ServiceUnavailable("a dependency is unavailable; retry shortly")
                return _json(error.to_dict(), error.status, _retry_after(error))
            except Exception:
                log.exception("unhandled error")
                return _json(
                    {"error": {"code": "internal_error", "message": "internal error"}}, 500
                )
            finally:
                _owner.reset(token)
                flush_metrics()

        if public:
            PUBLIC_ROUTES.update((path, m) for m in options.get("methods", ["GET"]))
        return app.route(path, **options)(wrapped)

    return register


def metered(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Event handlers write the metrics they recorded as EMF when they return or raise."""

    @functools.wraps(handler)
    def wrapped(event: Any) -> Any:
        try:
            return handler(event)
        finally:
            flush_metrics()

    return wrapped


def _static(page: StaticFile) -> Response:
    headers: dict[str, str | list[str]] = {**page.headers}
    return Response(body=page.body, status_code=200, headers=headers)


def _retry_after(error: AppError) -> dict[str, str]:
    return {"Retry-After": "1"} if error.status == 503 else {}


def _request() -> Request:
    request = app.current_request
    assert request is not None
    return request


def _body() -> bytes:
    raw = _request().raw_body or b""
    return raw if isinstance(raw, bytes) else raw.encode()


def _tenant() -> str:
    """The tenant the route wrapper authenticated for this request."""
    owner = _owner.get()
    assert owner, "a public route asked for the caller's tenant"
    return owner


def _base_path() -> str:
    """``/<stage>`` behind API Gateway's default endpoint, empty locally or on a custom domain."""
    context = _request().context
    stage, path = context.get("stage", ""), context.get("path", "")
    staged = path == f"/{stage}" or path.startswith(f"/{stage}/")
    return f"/{stage}" if stage and staged else ""


@route("/", methods=["GET"], public=True)
def web_page() -> Response:
    """The web page; no key needed (it asks for one)."""
    return _static(index_page(base_path=_base_path()))


@route("/static/{name}", methods=["GET"], public=True)
def web_static(name: str) -> Response:
    """The page's script and style sheet, from a fixed list."""
    return _static(static_file(name))


@route("/health", methods=["GET"], public=True)
def health() -> Response:
    """Liveness, no key needed."""
    return _json({"status": "ok", "model": get_service().model_info.to_dict()})


@route("/openapi.json", methods=["GET"], public=True)
def openapi() -> Response:
    """The OpenAPI 3 document of this API."""
    return _json(openapi_document(get_service().settings, server_url=_base_path() or "/"))


@route("/docs", methods=["GET"], public=True)
def docs() -> Response:
    """The API's documentation page (no outside resources)."""
    return Response(body=docs_page(), headers={"Content-Type": "text/html; charset=utf-8"})


@route("/jobs", methods=["POST"], content_types=["*/*"])
def submit_job() -> Response:
    """Accept one image; 202 with the job id and where to poll."""
    owner = _tenant()
    request = _request()
    job = get_service().submit(
        owner=owner,
        content_type=request.headers.get("content-type", ""),
        body=_body(),
        query=request.query_params or {},
        idempotency_key=request.headers.get("idempotency-key"),
    )
    status_url = f"{_base_path()}/jobs/{job.job_id}"
    return _json(
        {"job_id": job.job_id, "status": job.status.value, "status_url": status_url},
        202,
        {"Location": status_url},
    )


@route("/jobs/{job_id}", methods=["GET"])
def get_job(job_id: str) -> Response:
    """One of the caller's jobs, with a short-lived image URL and its webhook deliveries."""
    return _json(get_service().view(owner=_tenant(), job_id=job_id))


@route("/jobs/{job_id}", methods=["DELETE"])
def delete_job(job_id: str) -> Response:
    """Remove the job's record and image (204)."""
    get_service().delete(owner=_tenant(), job_id=job_id)
    return Response(body="", status_code=204)


@route("/jobs/{job_id}/retry", methods=["POST"], content_types=["*/*"])
def retry_job(job_id: str) -> Response:
    """FAILED → PENDING and queued again (202); 409 in any other state."""
    job = get_service().retry(owner=_tenant(), job_id=job_id)
    status_url = f"{_base_path()}/jobs/{job.job_id}"
    return _json(
        {"job_id": job.job_id, "status": job.status.value, "status_url": status_url},
        202,
        {"Location": status_url},
    )


@route("/jobs", methods=["GET"])
def list_jobs() -> Response:
    """The caller's jobs, newest first, paginated."""
    params: Mapping[str, str] = _request().query_params or {}
    page = get_service().list_jobs(
        owner=_tenant(),
        status=params.get("status"),
        limit=params.get("limit"),
        next_token=params.get("next_token"),
    )
    return _json({"jobs": [j.to_api() for j in page.jobs], "next_token": page.next_token})


@route("/batches", methods=["POST"], content_types=["*/*"])
def submit_batch() -> Response:
    """Many images in one multipart request (one ``images`` part each); 202."""
    owner = _tenant()
    batch = get_services().batches.submit(
        owner=owner, content_type=_request().headers.get("content-type", ""), body=_body()
    )
    status_url = f"{_base_path()}/batches/{batch['batch_id']}"
    return _json({**batch, "status_url": status_url}, 202, {"Location": status_url})


@route("/batches/{batch_id}", methods=["GET"])
def get_batch(batch_id: str) -> Response:
    """The caller's batch: status, progress counts and its jobs."""
    return _json(get_services().batches.get(owner=_tenant(), batch_id=batch_id))


@route("/uploads", methods=["POST"], content_types=["*/*"])
def create_upload() -> Response:
    """A presigned S3 POST for an image too big for API Gateway; the S3 event makes the job."""
    owner = _tenant()
    upload = get_services().uploads.create(owner=owner, body=_body())
    status_url = f"{_base_path()}/jobs/{upload['job_id']}"
    return _json({**upload, "status_url": status_url}, 201)


@route("/webhooks", methods=["POST"], content_types=["*/*"])
def create_webhook() -> Response:
    """Subscribe a URL to job events; the answer holds its signing secret (201)."""
    owner = _tenant()
    return _json(get_services().webhooks.subscribe(owner=owner, body=_body()), 201)


@route("/webhooks", methods=["GET"])
def list_webhooks() -> Response:
    """The caller's webhook subscriptions."""
    return _json({"webhooks": get_services().webhooks.subscriptions(owner=_tenant())})


@route("/webhooks/{webhook_id}", methods=["DELETE"])
def delete_webhook(webhook_id: str) -> Response:
    """Remove a subscription (204)."""
    get_services().webhooks.unsubscribe(owner=_tenant(), webhook_id=webhook_id)
    return Response(body="", status_code=204)


@route("/account", methods=["GET"])
def account() -> Response:
    """The caller's tenant and the secret that signs its per-job webhooks."""
    return _json(get_services().webhooks.account(owner=_tenant()))


@app.on_sqs_message(queue=JOBS_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=1)
@metered
def classify(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """Classify a batch; report only the failed messages (ReportBatchItemFailures)."""
    messages = [QueueMessage.from_record(record.to_dict()) for record in event]
    failed = get_service().process_batch(messages)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}


@app.on_sqs_message(queue=DEAD_LETTER_QUEUE_NAME, batch_size=10)
@metered
def dead_letters(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """Jobs SQS gave up on end FAILED with ``retries_exhausted``."""
    messages = [QueueMessage.from_record(record.to_dict()) for record in event]
    failed = get_service().dead_letters(messages)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}


@app.on_sqs_message(queue=INGEST_QUEUE_NAME, batch_size=10)
@metered
def ingest(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """S3 object-created notifications (through SQS) become jobs."""
    messages = [QueueMessage.from_record(record.to_dict()) for record in event]
    failed = get_service().ingest(messages)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}


@app.on_sqs_message(queue=NOTIFY_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=1)
@metered
def notify(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """Job events (the topic's queue): write back bulk results, queue the webhook deliveries."""
    messages = [(r.to_dict()["messageId"], r.body, _tenant_attribute(r.to_dict())) for r in event]
    failed = get_services().webhooks.on_job_events(messages)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}


def _tenant_attribute(record: dict[str, Any]) -> str | None:
    """The ``tenant`` message attribute of an SQS record (raw SNS delivery), if it has one."""
    value = (record.get("messageAttributes") or {}).get("tenant") or {}
    return value.get("stringValue")


@app.on_sqs_message(queue=WEBHOOKS_QUEUE_NAME, batch_size=10)
@metered
def deliver_webhooks(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """One delivery attempt per message; failures are rescheduled, not raised."""
    bodies = [(r.to_dict()["messageId"], r.body) for r in event]
    failed = get_services().webhooks.deliver(bodies)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}
