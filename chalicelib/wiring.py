"""Builds the services from settings once per container; tests may install their own."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from chalicelib.aws import AwsClients
from chalicelib.batches import BatchService
from chalicelib.classifier import Classifier, get_classifier, read_model_info
from chalicelib.deliveries import WebhookService
from chalicelib.ingest import UploadService
from chalicelib.jobs import JobRepository
from chalicelib.keys import Authenticator, KeyStore
from chalicelib.notify import EventPublisher
from chalicelib.queue import JobQueue, Queue
from chalicelib.service import JobService
from chalicelib.settings import Settings
from chalicelib.storage import ImageStore
from chalicelib.tenants import TenantStore
from chalicelib.webhooks import HttpSender, Resolver, Sender, system_resolver


@dataclass(frozen=True)
class Services:
    """Every use case a handler may call, sharing one set of adapters."""

    jobs: JobService
    batches: BatchService
    uploads: UploadService
    webhooks: WebhookService
    keys: KeyStore
    auth: Authenticator


_services: Services | None = None
_lock = threading.Lock()


def build_service(
    settings: Settings,
    clients: AwsClients | None = None,
    *,
    resolve: Resolver = system_resolver,
) -> JobService:
    """Wire the real adapters (lazy AWS clients, lazily loaded model) around the job use cases."""
    aws = clients or AwsClients(settings)

    def classifier() -> Classifier:
        return get_classifier(
            settings.model_dir, threads=settings.ort_threads, spinning=settings.ort_spinning
        )

    return JobService(
        settings=settings,
        repo=JobRepository(aws.dynamodb, settings.table),
        store=ImageStore(aws.s3, settings.bucket),
        queue=JobQueue(aws.sqs, name=settings.jobs_queue, url=settings.jobs_queue_url),
        publisher=EventPublisher(
            aws.sns, topic_arn=settings.topic_arn, topic_name=settings.topic_name
        ),
        classifier=classifier,
        model_info=read_model_info(settings.model_dir),
        tenants=TenantStore(aws.dynamodb, settings.tenants_table),
        resolve=resolve,
    )


def services_around(
    jobs: JobService,
    clients: AwsClients | None = None,
    *,
    sender: Sender | None = None,
    resolve: Resolver = system_resolver,
) -> Services:
    """The other use cases, built around a job service and sharing its adapters."""
    s = jobs.settings
    aws = clients or AwsClients(s)
    keys = KeyStore(jobs.tenants)
    return Services(
        keys=keys,
        auth=Authenticator(keys=keys, configured=s.api_keys),
        jobs=jobs,
        batches=BatchService(jobs=jobs, repo=jobs.repo, tenants=jobs.tenants),
        uploads=UploadService(settings=s, store=jobs.store),
        webhooks=WebhookService(
            settings=s,
            tenants=jobs.tenants,
            store=jobs.store,
            queue=Queue(aws.sqs, name=s.webhooks_queue, url=s.webhooks_queue_url),
            sender=sender
            or HttpSender(
                allow_hosts=s.webhook_allow_hosts, timeout_s=s.webhook_timeout_s, resolve=resolve
            ),
            resolve=resolve,
        ),
    )


def get_services() -> Services:
    """The container's services, built from the environment on first use."""
    global _services
    with _lock:
        if _services is None:
            settings = Settings.from_env()
            clients = AwsClients(settings)
            _services = services_around(build_service(settings, clients), clients)
        return _services


def get_service() -> JobService:
    """The job use cases."""
    return get_services().jobs


def set_services(services: Services | None) -> None:
    """Install services (tests), or None to rebuild from the environment on next use."""
    global _services
    with _lock:
        _services = services


def set_service(service: JobService | None) -> None:
    """Install a job service (tests) with the other use cases built around it."""
    set_services(None if service is None else services_around(service))
