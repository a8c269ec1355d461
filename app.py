"""Routes and event handlers only: each is a few lines that call ``chalicelib``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from chalice.app import Chalice, Request, Response, SQSEvent

from chalicelib.auth import authenticate
from chalicelib.errors import AppError, ServiceUnavailable, TransientError
from chalicelib.service import QueueMessage
from chalicelib.settings import DEAD_LETTER_QUEUE_NAME, JOBS_QUEUE_NAME
from chalicelib.wiring import get_service

app = Chalice(app_name="imgcls")
app.log.setLevel(logging.INFO)
# API Gateway must pass image and multipart bodies through as binary.
app.api.binary_types.extend(["image/*", "multipart/form-data"])

log = logging.getLogger("imgcls")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=body,
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def route(path: str, **options: Any) -> Callable[[Callable[..., Response]], Any]:
    """``app.route`` plus the one place where domain errors become JSON HTTP errors.

    (Chalice turns view exceptions into its own 500 before HTTP middleware sees them, so the
    translation wraps each view instead.)
    """

    def register(view: Callable[..., Response]) -> Any:
        @functools.wraps(view)
        def wrapped(**kwargs: Any) -> Response:
            try:
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

        return app.route(path, **options)(wrapped)

    return register


def _retry_after(error: AppError) -> dict[str, str]:
    return {"Retry-After": "1"} if error.status == 503 else {}


def _request() -> Request:
    request = app.current_request
    assert request is not None
    return request


def _tenant() -> str:
    return authenticate(_request().headers, get_service().settings.api_keys)


def _base_path() -> str:
    """``/<stage>`` behind API Gateway's default endpoint, empty locally or on a custom domain."""
    context = _request().context
    stage, path = context.get("stage", ""), context.get("path", "")
    return f"/{stage}" if stage and path.startswith(f"/{stage}/") else ""


@route("/health", methods=["GET"])
def health() -> Response:
    """Liveness, no key needed."""
    return _json({"status": "ok", "model": get_service().model_info.to_dict()})


@route("/jobs", methods=["POST"], content_types=["*/*"])
def submit_job() -> Response:
    """Accept one image; 202 with the job id and where to poll."""
    owner = _tenant()
    request = _request()
    raw = request.raw_body or b""
    job = get_service().submit(
        owner=owner,
        content_type=request.headers.get("content-type", ""),
        body=raw if isinstance(raw, bytes) else raw.encode(),
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
    """One of the caller's jobs, with a short-lived image URL."""
    service = get_service()
    job = service.get(owner=_tenant(), job_id=job_id)
    return _json({**job.to_api(), "image_url": service.image_url(job)})


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


@app.on_sqs_message(queue=JOBS_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=1)
def classify(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """Classify a batch; report only the failed messages (ReportBatchItemFailures)."""
    messages = [QueueMessage.from_record(record.to_dict()) for record in event]
    failed = get_service().process_batch(messages)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}


@app.on_sqs_message(queue=DEAD_LETTER_QUEUE_NAME, batch_size=10)
def dead_letters(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """Jobs SQS gave up on end FAILED with ``retries_exhausted``."""
    messages = [QueueMessage.from_record(record.to_dict()) for record in event]
    failed = get_service().dead_letters(messages)
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}
