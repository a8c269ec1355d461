"""Routes and event handlers only: each is a few lines that call ``chalicelib``.

Every route is an operation of ``chalicelib.operations``; ``Router`` checks the key, validates
the inputs with the contract's models and turns domain errors into JSON answers.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from chalice.app import Chalice, Response, SQSEvent

from chalicelib import contract as c
from chalicelib.exports import ExportFile
from chalicelib.openapi import docs_page, openapi_document
from chalicelib.routing import Answer, Call, Router
from chalicelib.settings import (
    DEAD_LETTER_QUEUE_NAME,
    INGEST_QUEUE_NAME,
    JOBS_QUEUE_NAME,
    NOTIFY_QUEUE_NAME,
    WEBHOOKS_QUEUE_NAME,
)
from chalicelib.sqs_batch import each_record, records
from chalicelib.status_api import job_status
from chalicelib.telemetry import configure_logging
from chalicelib.telemetry import flush as flush_metrics
from chalicelib.waiting import parse_prefer_wait
from chalicelib.webpage import StaticFile, index_page, static_file
from chalicelib.wiring import get_services

configure_logging()
app = Chalice(app_name="imgcls")
app.log.setLevel(logging.INFO)
# API Gateway must pass image and multipart bodies through as binary.
app.api.binary_types.extend(["image/*", "multipart/form-data"])
router = Router(
    app,
    authenticate=lambda headers: get_services().auth.authenticate(headers),
    admit=lambda tenant: get_services().limiter.admit(tenant),
)
PUBLIC_ROUTES = router.public  # (path, method) served without an API key


def metered(handler: Callable[[SQSEvent], Any]) -> Callable[[SQSEvent], Any]:
    """Event handlers write the metrics they recorded as EMF when they return or raise."""

    @functools.wraps(handler)
    def wrapped(event: SQSEvent) -> Any:
        try:
            return handler(event)
        finally:
            flush_metrics()

    return wrapped


def _static(page: StaticFile) -> Response:
    return Response(body=page.body, status_code=200, headers={**page.headers})


def _file(export: ExportFile) -> Response:
    return Response(body=export.body, status_code=200, headers={**export.headers})


def _accepted(call: Call, job_id: str, status: c.JobStatus) -> Answer:
    url = f"{call.base_path}/jobs/{job_id}"
    return Answer(c.Accepted(job_id=job_id, status=status, status_url=url), 202, {"Location": url})


@router.route("webPage")
def web_page(call: Call) -> Response:
    """The web page; no key needed (it asks for one)."""
    return _static(index_page(base_path=call.base_path))


@router.route("webPageFile")
def web_static(call: Call, name: str) -> Response:
    """The page's script and style sheet, from a fixed list."""
    return _static(static_file(name))


@router.route("health")
def health(call: Call) -> c.Health:
    """Liveness, no key needed."""
    return c.Health(model=get_services().model)


@router.route("openapi")
def openapi(call: Call) -> Response:
    """The OpenAPI 3.1 document of this API."""
    document = openapi_document(server_url=call.base_path or "/")
    return Response(body=document, headers={"Content-Type": "application/json"})


@router.route("docs")
def docs(call: Call) -> Response:
    """The API's documentation page (no outside resources)."""
    return Response(body=docs_page(), headers={"Content-Type": "text/html; charset=utf-8"})


@router.route("submitJob")
def submit_job(call: Call) -> Answer:
    """Accept one image; 202 with the job id and where to follow it, or 200 with the job when
    it is finished already (answered from the cache) or, with ``Prefer: wait=N``, within N
    seconds."""
    headers = call.headers(c.SubmitHeaders)
    services = get_services()
    job = services.submit.submit(
        owner=call.tenant,
        content_type=call.content_type,
        body=call.body,
        query=call.query(c.SubmitQuery),
        headers=headers,
    )
    location = {"Location": f"{call.base_path}/jobs/{job.job_id}"}
    if job.cached_from:  # finished already
        return Answer(services.jobs.present(job, new=True), 200, location)
    wait = parse_prefer_wait(headers.prefer)
    if wait:
        done = services.jobs.detail(owner=call.tenant, job_id=job.job_id, wait=wait, known=job)
        if done.status.terminal:
            return Answer(done, 200, {"Preference-Applied": f"wait={wait:g}", **location})
    return _accepted(call, job.job_id, job.status)


@router.route("getJob")
def get_job(call: Call, job_id: str) -> c.JobDetail:
    """One of the caller's jobs; with ``?wait=N``, once it is finished. Deployed, API Gateway
    sends this method to the status function (``chalicelib.status_api``) instead."""
    return job_status(call, job_id, get_services().jobs)


@router.route("deleteJob")
def delete_job(call: Call, job_id: str) -> None:
    """Remove the job's record and image (204)."""
    get_services().jobs.delete(owner=call.tenant, job_id=job_id)


@router.route("cancelJob")
def cancel_job(call: Call, job_id: str) -> c.JobDetail:
    """PENDING/PROCESSING → CANCELED (200); 409 once the job is finished."""
    return get_services().cancels.cancel_job(owner=call.tenant, job_id=job_id)


@router.route("exportJobs")
def export_jobs(call: Call) -> Response:
    """The caller's jobs, filtered like the listing, as CSV or JSON Lines."""
    query = call.query(c.ExportJobsQuery)
    return _file(get_services().exports.jobs(owner=call.tenant, query=query))


@router.route("retryJob")
def retry_job(call: Call, job_id: str) -> Answer:
    """FAILED → PENDING and queued again (202); 409 in any other state."""
    job = get_services().jobs.retry(owner=call.tenant, job_id=job_id)
    return _accepted(call, job.job_id, job.status)


@router.route("listJobs")
def list_jobs(call: Call) -> c.JobPage:
    """The caller's jobs, newest first, paginated."""
    return get_services().jobs.list(owner=call.tenant, query=call.query(c.ListJobsQuery))


@router.route("submitBatch")
def submit_batch(call: Call) -> Answer:
    """Many images in one multipart request (one ``images`` part each); 202."""
    batch = get_services().batches.submit(
        owner=call.tenant, content_type=call.content_type, body=call.body, base_path=call.base_path
    )
    return Answer(batch, 202, {"Location": batch.status_url})


@router.route("getBatch")
def get_batch(call: Call, batch_id: str) -> c.Batch:
    """The caller's batch: status, progress counts and its jobs; with ``?wait=N``, once every
    job is finished."""
    wait = call.query(c.WaitQuery).wait
    return get_services().batches.get(owner=call.tenant, batch_id=batch_id, wait=wait)


@router.route("cancelBatch")
def cancel_batch(call: Call, batch_id: str) -> c.Batch:
    """Cancel the batch's unfinished jobs; the finished ones stay."""
    return get_services().cancels.cancel_batch(owner=call.tenant, batch_id=batch_id)


@router.route("exportBatch")
def export_batch(call: Call, batch_id: str) -> Response:
    """The batch's results as CSV or JSON Lines."""
    fmt = call.query(c.ExportQuery).format
    return _file(get_services().exports.batch(owner=call.tenant, batch_id=batch_id, fmt=fmt))


@router.route("ready")
def ready(call: Call) -> Answer:
    """Readiness: 200 when S3, DynamoDB and SQS answer, else 503 naming the one that does not."""
    answer = get_services().readiness.readiness()
    return Answer(answer, 200 if answer.status == "ready" else 503)


@router.route("createUpload")
def create_upload(call: Call) -> c.Upload:
    """A presigned S3 POST for an image too big for API Gateway; the S3 event makes the job."""
    request = call.json(c.UploadRequest)
    return get_services().uploads.create(
        owner=call.tenant, request=request, base_path=call.base_path
    )


@router.route("createWebhook")
def create_webhook(call: Call) -> c.NewWebhook:
    """Subscribe a URL to job events; the answer holds its signing secret (201)."""
    request = call.json(c.WebhookRequest)
    return get_services().subscriptions.subscribe(owner=call.tenant, request=request)


@router.route("listWebhooks")
def list_webhooks(call: Call) -> c.WebhookList:
    """The caller's webhook subscriptions."""
    return get_services().subscriptions.list(owner=call.tenant)


@router.route("deleteWebhook")
def delete_webhook(call: Call, webhook_id: str) -> None:
    """Remove a subscription (204)."""
    get_services().subscriptions.unsubscribe(owner=call.tenant, webhook_id=webhook_id)


@router.route("rotateWebhookSecret")
def rotate_webhook_secret(call: Call, webhook_id: str) -> c.NewWebhook:
    """A new signing secret for a subscription; both sign deliveries for a day."""
    return get_services().subscriptions.rotate_secret(owner=call.tenant, webhook_id=webhook_id)


@router.route("updateWebhook")
def update_webhook(call: Call, webhook_id: str) -> c.Webhook:
    """Enable a subscription again (``{"enabled": true}``), or disable it."""
    request = call.json(c.WebhookUpdate)
    return get_services().subscriptions.update(
        owner=call.tenant, webhook_id=webhook_id, request=request
    )


@router.route("listWebhookDeliveries")
def list_webhook_deliveries(call: Call, webhook_id: str) -> c.DeliveryPage:
    """A subscription's deliveries, newest first, paginated."""
    query = call.query(c.PageQuery)
    return get_services().webhook_log.page(owner=call.tenant, webhook_id=webhook_id, query=query)


@router.route("redeliverWebhook")
def redeliver_webhook(call: Call, webhook_id: str, delivery_id: str) -> Answer:
    """Queue a delivery again, with the same ``webhook-id`` (202)."""
    delivery = get_services().webhook_log.redeliver(
        owner=call.tenant, webhook_id=webhook_id, delivery_id=delivery_id
    )
    return Answer(delivery, 202)


@router.route("getAccount")
def account(call: Call) -> c.Account:
    """The caller's tenant and the secret that signs its per-job webhooks."""
    return get_services().subscriptions.account(owner=call.tenant)


@router.route("getUsage")
def usage(call: Call) -> c.Usage:
    """What the caller used, day by day."""
    days = call.query(c.UsageQuery).days
    return get_services().usage.report(owner=call.tenant, days=days)


@app.on_sqs_message(queue=JOBS_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=0)
@metered
def classify(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    """Classify a batch in one model run; report only the failed messages."""
    failed = get_services().classify.process(records(event.to_dict()))
    return {"batchItemFailures": [{"itemIdentifier": mid} for mid in failed]}


@app.on_sqs_message(queue=DEAD_LETTER_QUEUE_NAME, batch_size=10)
@metered
def dead_letters(event: SQSEvent) -> Any:
    """Jobs SQS gave up on end FAILED with ``retries_exhausted``."""
    return each_record(event.to_dict(), get_services().dead_letters.settle)


@app.on_sqs_message(queue=INGEST_QUEUE_NAME, batch_size=10)
@metered
def ingest(event: SQSEvent) -> Any:
    """S3 object-created notifications (through SQS) become jobs."""
    return each_record(event.to_dict(), get_services().ingest.ingest)


@app.on_sqs_message(queue=NOTIFY_QUEUE_NAME, batch_size=10, maximum_batching_window_in_seconds=0)
@metered
def notify(event: SQSEvent) -> Any:
    """Job events: bulk results written back, webhook deliveries queued (the fan-out)."""
    return each_record(event.to_dict(), get_services().fanout().on_record)


@app.on_sqs_message(queue=WEBHOOKS_QUEUE_NAME, batch_size=10)
@metered
def deliver_webhooks(event: SQSEvent) -> Any:
    """One delivery attempt per message, within the batch's time budget; a receiver's failure
    is rescheduled, not raised."""
    return each_record(event.to_dict(), get_services().deliveries.for_batch())
