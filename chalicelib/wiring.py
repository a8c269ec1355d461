"""Builds the use cases from settings once per container; tests and the local runtime may
install their own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.adapters import Adapters, readiness_probe
from chalicelib.answer_cache import AnswerCache
from chalicelib.api_keys import Authenticator, KeyStore
from chalicelib.aws import AwsClients
from chalicelib.batches import Batches
from chalicelib.cancels import Cancels
from chalicelib.classify import BatchClassifier
from chalicelib.contract import Model
from chalicelib.dead_letters import DeadLetters
from chalicelib.exports import Exports
from chalicelib.fanout import Fanout
from chalicelib.ingest import Ingester
from chalicelib.job_actions import JobActions
from chalicelib.model_info import answers_version, read_model_info
from chalicelib.pending_caps import PendingCaps
from chalicelib.rate_limits import RateLimiter, rate_limiter
from chalicelib.readiness import ReadinessProbe
from chalicelib.settings import Settings
from chalicelib.submit import Submitter
from chalicelib.subscriptions import Subscriptions
from chalicelib.uploads import Uploads
from chalicelib.usage import UsageReport
from chalicelib.webhook_delivery import Deliverer
from chalicelib.webhook_http import HttpSender, Sender
from chalicelib.webhook_log import WebhookLog
from chalicelib.webhook_targets import Resolver, system_resolver

if TYPE_CHECKING:
    from chalicelib.classifier import Classifier


@dataclass(frozen=True)
class Services:
    """Every use case a handler may call, sharing one set of adapters."""

    settings: Settings
    model: Model
    adapters: Adapters
    auth: Authenticator
    limiter: RateLimiter
    keys: KeyStore
    submit: Submitter
    jobs: JobActions
    batches: Batches
    cancels: Cancels
    exports: Exports
    cache: AnswerCache
    uploads: Uploads
    subscriptions: Subscriptions
    webhook_log: WebhookLog
    usage: UsageReport
    classify: BatchClassifier
    ingest: Ingester
    dead_letters: DeadLetters
    deliveries: Deliverer
    fanout: Callable[[], Fanout]  # one per batch of events
    readiness: ReadinessProbe


def classifier_loader(settings: Settings) -> Callable[[], Classifier]:
    """The container's classifier, loaded on first use."""

    def load() -> Classifier:
        # Imported on first use: only the classify function loads ONNX Runtime and numpy.
        from chalicelib.classifier import get_classifier

        return get_classifier(
            settings.model_dir, threads=settings.ort_threads, spinning=settings.ort_spinning
        )

    return load


def build_services(
    settings: Settings,
    aws: AwsClients | None = None,
    *,
    adapters: Adapters | None = None,
    sender: Sender | None = None,
    resolve: Resolver = system_resolver,
) -> Services:
    """Every use case, wired to the real adapters unless ``adapters`` are given."""
    s = settings
    a = adapters or Adapters.build(s, aws or AwsClients(s))
    keys = KeyStore(a.tenants)
    caps = PendingCaps(settings=s, repo=a.repo)
    cache = AnswerCache(table=a.tenants, repo=a.repo, version=answers_version(s.model_dir))
    submitter = Submitter(
        settings=s,
        repo=a.repo,
        images=a.images,
        queue=a.jobs_queue,
        caps=caps,
        cache=cache,
        publisher=a.publisher,
        resolve=resolve,
    )
    jobs = JobActions(
        settings=s,
        repo=a.repo,
        images=a.images,
        queue=a.jobs_queue,
        deliveries=a.deliveries,
        forget=cache.forget,
    )
    batches = Batches(submitter=submitter, repo=a.repo, store=a.batches)
    model = read_model_info(s.model_dir)
    http = sender or HttpSender(
        policy=s.webhook_policy, timeout_s=s.webhook_timeout_s, resolve=resolve
    )
    return Services(
        settings=s,
        model=model,
        adapters=a,
        auth=Authenticator(keys=keys, configured=s.api_keys),
        limiter=rate_limiter(s, a.tenants),
        keys=keys,
        submit=submitter,
        jobs=jobs,
        batches=batches,
        cancels=Cancels(jobs=jobs, repo=a.repo, batches=batches, publisher=a.publisher),
        exports=Exports(batches=batches, repo=a.repo),
        cache=cache,
        uploads=Uploads(settings=s, images=a.images, caps=caps),
        subscriptions=Subscriptions(settings=s, store=a.webhooks, resolve=resolve),
        usage=UsageReport(repo=a.repo, webhooks=a.webhooks, log_store=a.delivery_log),
        webhook_log=WebhookLog(
            webhooks=a.webhooks, log_store=a.delivery_log, queue=a.webhooks_queue
        ),
        classify=BatchClassifier(
            settings=s,
            repo=a.repo,
            images=a.images,
            publisher=a.publisher,
            classifier=classifier_loader(s),
            model=model,
            cache=cache,
        ),
        ingest=Ingester(
            settings=s,
            repo=a.repo,
            images=a.images,
            queue=a.jobs_queue,
            publisher=a.publisher,
            cache=cache,
        ),
        dead_letters=DeadLetters(repo=a.repo, publisher=a.publisher),
        deliveries=Deliverer(
            settings=s,
            webhooks=a.webhooks,
            deliveries=a.deliveries,
            queue=a.webhooks_queue,
            sender=http,
            delivery_log=a.delivery_log,
        ),
        readiness=readiness_probe(s),
        fanout=lambda: Fanout(
            settings=s,
            images=a.images,
            webhooks=a.webhooks,
            deliveries=a.deliveries,
            log=a.delivery_log,
            queue=a.webhooks_queue,
            marks=a.repo,
        ),
    )


_services: Services | None = None
_lock = threading.Lock()


def get_services() -> Services:
    """The container's services, built from the environment on first use."""
    global _services
    with _lock:
        if _services is None:
            _services = build_services(Settings.from_env())
        return _services


def set_services(services: Services | None) -> None:
    """Install services (tests, the local runtime), or None to rebuild on next use."""
    global _services
    with _lock:
        _services = services
