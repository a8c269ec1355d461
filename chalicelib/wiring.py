"""Builds the service from settings once per container; tests may install their own."""

from __future__ import annotations

import threading

from chalicelib.aws import AwsClients
from chalicelib.classifier import Classifier, get_classifier, read_model_info
from chalicelib.jobs import JobRepository
from chalicelib.notify import EventPublisher
from chalicelib.queue import JobQueue
from chalicelib.service import JobService
from chalicelib.settings import Settings
from chalicelib.storage import ImageStore

_service: JobService | None = None
_lock = threading.Lock()


def build_service(settings: Settings, clients: AwsClients | None = None) -> JobService:
    """Wire the real adapters (lazy AWS clients, lazily loaded model) around the use cases."""
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
    )


def get_service() -> JobService:
    """The container's service, built from the environment on first use."""
    global _service
    with _lock:
        if _service is None:
            _service = build_service(Settings.from_env())
        return _service


def set_service(service: JobService | None) -> None:
    """Install a service (tests), or None to rebuild from the environment on next use."""
    global _service
    with _lock:
        _service = service
