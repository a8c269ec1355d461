"""After a restart on kept state: put back what the lost queue messages stood for.

The emulator keeps S3 and DynamoDB (``infra/journal.py``), not the queues: SQS is durable on AWS
and its messages are not ours to rebuild byte for byte. Each lost message stood for something
the stores still say, and everything downstream is idempotent, so the runtime re-derives them
once at start, before the pollers run:

- a job still ``PENDING`` or ``PROCESSING`` is queued again (its start is a conditional write:
  a second message for it is harmless);
- an image under ``incoming/`` with no job, and every object under ``uploads/`` (taking an
  upload removes it), is ingested (the job id comes from the object, so this makes the job S3's
  event would have made, once);
- a delivery recorded ``pending`` or ``retrying`` is queued again, for the job's current event;
- a finished job whose event may not have been fanned out (a webhook or a subscription with no
  delivery record for it, a bulk drop with no result file) has its event published again (same
  id: receivers and the fan-out drop what they already have).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from chalicelib.aws import AwsClients
from chalicelib.delivery_store import DeliveryRecord
from chalicelib.dynamo import from_item
from chalicelib.fanout import JOB_TARGET, DeliveryMessage
from chalicelib.image_store import INCOMING_PREFIX, UPLOADS_PREFIX, results_key, stored_object
from chalicelib.job_events import job_event
from chalicelib.job_store import JobRecord
from chalicelib.settings import Settings
from chalicelib.webhook_store import Subscription
from chalicelib.wiring import Services

log = logging.getLogger("imgcls.recovery")


def _scan(aws: AwsClients, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in aws.dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        items += page.get("Items", [])
    return items


def _objects(aws: AwsClients, bucket: str, prefix: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [dict(obj) for obj in page.get("Contents", [])]
    return found


def _exists(aws: AwsClients, bucket: str, key: str) -> bool:
    return bool(aws.s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1).get("KeyCount"))


def recover(services: Services, settings: Settings, aws: AwsClients) -> Counter[str]:
    """Re-derive the lost messages; what was done, counted."""
    done: Counter[str] = Counter()
    a = services.adapters
    jobs = {job.job_id: job for job in (JobRecord.from_item(i) for i in _scan(aws, settings.table))}
    for job in jobs.values():
        if not job.status.terminal:
            a.jobs_queue.send(job.job_id, job.generation, tenant=job.owner)
            done["jobs requeued"] += 1
    for prefix in (UPLOADS_PREFIX, INCOMING_PREFIX):
        for obj in _objects(aws, settings.bucket, prefix):
            stored = stored_object(settings.bucket, obj["Key"], str(obj.get("ETag", "")))
            # An upload still there was not taken yet (taking it removes it), job or not.
            if stored is not None and (stored.source == "upload" or stored.job_id not in jobs):
                services.ingest.ingest_object(stored)
                done["objects ingested"] += 1
    deliveries = _deliveries(aws, settings)
    subscriptions: dict[str, list[Subscription]] = {}
    for job in jobs.values():
        if job.status.terminal:
            if job.owner not in subscriptions:
                subscriptions[job.owner] = a.webhooks.subscriptions(job.owner)
            records = deliveries.get(job.job_id, {})
            done += _finished(services, settings, aws, job, records, subscriptions[job.owner])
    if done:
        log.info("recovered after a restart: %s", dict(done))
    return done


def _deliveries(aws: AwsClients, settings: Settings) -> dict[str, dict[str, DeliveryRecord]]:
    """Every delivery record, by job id and target."""
    out: dict[str, dict[str, DeliveryRecord]] = {}
    for item in _scan(aws, settings.tenants_table):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if pk.startswith("JOB#") and sk.startswith("DELIVERY#"):
            plain = {k: v for k, v in from_item(item).items() if k not in ("pk", "sk")}
            record = DeliveryRecord.model_validate(plain)
            out.setdefault(pk.removeprefix("JOB#"), {})[record.target] = record
    return out


def _finished(
    services: Services,
    settings: Settings,
    aws: AwsClients,
    job: JobRecord,
    records: dict[str, DeliveryRecord],
    subscriptions: list[Subscription],
) -> Counter[str]:
    done: Counter[str] = Counter()
    event = job_event(job)
    a = services.adapters
    for record in records.values():
        if record.event_id == event.id and record.state in ("pending", "retrying"):
            attempt = record.attempts + 1 if record.state == "retrying" else 1
            message = DeliveryMessage(
                event=event, tenant=job.owner, target=record.target, url=record.url, attempt=attempt
            )
            a.webhooks_queue.send(message.model_dump_json())
            done["deliveries requeued"] += 1
    expected = {JOB_TARGET} if job.webhook_url else set()
    expected |= {
        s.id
        for s in subscriptions
        if s.enabled and event.type in s.events and s.created_at < job.updated_at
    }
    missing = {t for t in expected if records.get(t) is None or records[t].event_id != event.id}
    no_results = (
        job.source == "s3"
        and job.filename is not None
        and not _exists(aws, settings.bucket, results_key(job.owner, job.filename))
    )
    if missing or no_results:
        a.publisher.publish(job)
        done["events published again"] += 1
    return done
