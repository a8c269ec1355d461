"""At-least-once delivery, partial batches, retries, idempotency and dead letters (moto)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.classifier import get_classifier, read_model_info
from chalicelib.errors import SimulatedCrash, TransientError
from chalicelib.jobs import Job, JobRepository
from chalicelib.notify import EventPublisher
from chalicelib.queue import JobQueue
from chalicelib.service import JobService
from chalicelib.settings import Settings
from chalicelib.storage import ImageStore
from chalicelib.tenants import TenantStore
from chalicelib.wiring import set_service
from tests.functional.conftest import KEY_A, KEY_B, Stack, fake_resolve
from tests.photos import CAT_CLASSES, COFFEE, cat_jpeg


class FlakyStore(ImageStore):
    """S3 that throttles reads of chosen keys."""

    def __init__(self, inner: ImageStore, failing: set[str]) -> None:
        self.__dict__.update(inner.__dict__)
        self.failing = failing

    def get(self, key: str) -> bytes:
        if any(key.endswith(job_id) for job_id in self.failing):
            raise TransientError("SlowDown")
        return super().get(key)


class DownQueue(JobQueue):
    """SQS that refuses sends while ``down`` is set."""

    def __init__(self, inner: JobQueue) -> None:
        self.__dict__.update(inner.__dict__)
        self.down = True

    def send(self, job: Job) -> None:
        if self.down:
            raise TransientError("SQS unavailable")
        super().send(job)


def service_with(stack: Stack, **overrides: Any) -> JobService:
    """The real service over moto, with some collaborators swapped for unreliable ones."""
    settings: Settings = overrides.pop("settings", stack.settings)
    parts: dict[str, Any] = {
        "settings": settings,
        "repo": JobRepository(stack.clients.dynamodb, settings.table),
        "store": ImageStore(stack.clients.s3, settings.bucket),
        "queue": JobQueue(stack.clients.sqs, name=settings.jobs_queue, url=settings.jobs_queue_url),
        "publisher": EventPublisher(
            stack.clients.sns, topic_arn=settings.topic_arn, topic_name=settings.topic_name
        ),
        "classifier": lambda: get_classifier(settings.model_dir),
        "model_info": read_model_info(settings.model_dir),
        "tenants": TenantStore(stack.clients.dynamodb, settings.tenants_table),
        "resolve": fake_resolve,
    }
    parts.update(overrides)
    service = JobService(**parts)
    set_service(service)
    return service


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(app) as c:
        yield c


def submit(client: Client, data: bytes, key: str = KEY_A, **headers: str) -> Any:
    return client.http.post(
        "/jobs", headers={"x-api-key": key, "content-type": "image/jpeg", **headers}, body=data
    )


def job(client: Client, job_id: str, key: str = KEY_A) -> dict[str, Any]:
    return dict(client.http.get(f"/jobs/{job_id}", headers={"x-api-key": key}).json_body)


def retry(client: Client, job_id: str, key: str = KEY_A) -> Any:
    return client.http.post(f"/jobs/{job_id}/retry", headers={"x-api-key": key})


def test_one_transient_failure_does_not_rerun_its_neighbours(client: Client, stack: Stack) -> None:
    ids = [submit(client, cat_jpeg()).json_body["job_id"] for _ in range(3)]
    inner = ImageStore(stack.clients.s3, stack.settings.bucket)
    service_with(stack, store=FlakyStore(inner, {ids[1]}))
    event = stack.receive_jobs_event()
    by_job = {json.loads(r["body"])["job_id"]: r["messageId"] for r in event["Records"]}

    result = client.lambda_.invoke("classify", event)

    assert result.payload == {"batchItemFailures": [{"itemIdentifier": by_job[ids[1]]}]}
    assert [job(client, i)["status"] for i in ids] == ["SUCCEEDED", "PROCESSING", "SUCCEEDED"]

    service_with(stack)  # S3 recovers; SQS hands the failed message over again
    again = {"Records": [r for r in event["Records"] if r["messageId"] == by_job[ids[1]]]}
    assert client.lambda_.invoke("classify", again).payload == {"batchItemFailures": []}
    recovered = job(client, ids[1])
    assert (recovered["status"], recovered["attempts"]) == ("SUCCEEDED", 2)
    assert job(client, ids[0])["attempts"] == 1


def test_fault_rate_fails_attempts_transiently(client: Client, stack: Stack) -> None:
    ids = [submit(client, cat_jpeg()).json_body["job_id"] for _ in range(4)]
    faulty = Settings.from_env({**_env(stack), "FAULT_RATE": "1"})
    service_with(stack, settings=faulty, rng=random.Random(7))
    event = stack.receive_jobs_event()

    result = client.lambda_.invoke("classify", event)

    assert len(result.payload["batchItemFailures"]) == 4
    assert {job(client, i)["status"] for i in ids} == {"PROCESSING"}
    assert {job(client, i)["attempts"] for i in ids} == {1}


def _env(stack: Stack) -> dict[str, str]:
    return {**stack.resources.env(), "API_KEYS": f"a:{KEY_A},b:{KEY_B}"}


def test_same_job_twice_in_one_batch_runs_once(client: Client, stack: Stack) -> None:
    job_id = submit(client, cat_jpeg()).json_body["job_id"]
    event = stack.receive_jobs_event()
    twin = dict(event["Records"][0], messageId="duplicate-delivery")
    event["Records"].append(twin)

    assert client.lambda_.invoke("classify", event).payload == {"batchItemFailures": []}
    assert job(client, job_id)["attempts"] == 1
    assert len(stack.published_events()) == 1


def test_retry_moves_failed_to_pending_and_requeues(client: Client, stack: Stack) -> None:
    bad = submit(client, cat_jpeg()[:4000]).json_body["job_id"]
    client.lambda_.invoke("classify", stack.receive_jobs_event())
    assert job(client, bad)["status"] == "FAILED"

    resp = retry(client, bad)

    assert resp.status_code == 202
    assert resp.json_body["status"] == "PENDING"
    assert job(client, bad)["error"] is None
    requeued = stack.receive_jobs_event()["Records"]
    assert [json.loads(r["body"])["job_id"] for r in requeued] == [bad]


@pytest.mark.parametrize("state", ["PENDING", "SUCCEEDED"])
def test_retry_of_a_job_that_has_not_failed_is_409(
    client: Client, stack: Stack, state: str
) -> None:
    job_id = submit(client, cat_jpeg()).json_body["job_id"]
    if state == "SUCCEEDED":
        client.lambda_.invoke("classify", stack.receive_jobs_event())
    assert job(client, job_id)["status"] == state

    resp = retry(client, job_id)

    assert resp.status_code == 409
    assert resp.json_body["error"]["code"] == "not_retryable"
    assert state in resp.json_body["error"]["message"]


def test_retry_of_unknown_or_foreign_job_is_404(client: Client) -> None:
    job_id = submit(client, cat_jpeg()).json_body["job_id"]
    assert retry(client, "0" * 32).status_code == 404
    assert retry(client, job_id, key=KEY_B).status_code == 404


def test_queue_outage_is_503_and_the_job_is_kept_failed_and_retryable(
    client: Client, stack: Stack
) -> None:
    real = JobQueue(
        stack.clients.sqs, name=stack.settings.jobs_queue, url=stack.resources.jobs_queue_url
    )
    down = DownQueue(real)
    service_with(stack, queue=down)

    resp = submit(client, cat_jpeg())

    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.json_body["error"]["code"] == "queue_unavailable"
    listed = client.http.get("/jobs", headers={"x-api-key": KEY_A}).json_body["jobs"]
    assert [(j["status"], j["error"]["code"]) for j in listed] == [("FAILED", "enqueue_failed")]
    down.down = False
    assert retry(client, listed[0]["job_id"]).status_code == 202
    client.lambda_.invoke("classify", stack.receive_jobs_event())
    assert job(client, listed[0]["job_id"])["predictions"][0]["class_id"] in CAT_CLASSES


def test_idempotency_key_returns_the_same_job_once(client: Client, stack: Stack) -> None:
    first = submit(client, cat_jpeg(), **{"Idempotency-Key": "order-42"})
    second = submit(client, cat_jpeg(), **{"Idempotency-Key": "order-42"})
    other_tenant = submit(client, cat_jpeg(), key=KEY_B, **{"Idempotency-Key": "order-42"})

    assert first.status_code == second.status_code == 202
    assert first.json_body["job_id"] == second.json_body["job_id"]
    assert other_tenant.json_body["job_id"] != first.json_body["job_id"]
    client.lambda_.invoke("classify", stack.receive_jobs_event())
    assert job(client, first.json_body["job_id"])["status"] == "SUCCEEDED"
    again = submit(client, cat_jpeg(), **{"Idempotency-Key": "order-42"})
    assert again.json_body == {**first.json_body, "status": "SUCCEEDED"}
    assert stack.receive_jobs_event()["Records"] == []  # a finished job is not queued again


def test_idempotency_key_with_another_image_is_409(client: Client) -> None:
    submit(client, cat_jpeg(), **{"Idempotency-Key": "k1"})
    resp = client.http.post(
        "/jobs",
        headers={"x-api-key": KEY_A, "content-type": "image/png", "Idempotency-Key": "k1"},
        body=COFFEE.read_bytes(),
    )
    assert resp.status_code == 409
    assert resp.json_body["error"]["code"] == "idempotency_key_reused"


def test_dead_letters_end_jobs_failed_but_never_undo_a_success(
    client: Client, stack: Stack
) -> None:
    stuck = submit(client, cat_jpeg()).json_body["job_id"]
    done = submit(client, cat_jpeg()).json_body["job_id"]
    event = stack.receive_jobs_event()
    done_only = {"Records": [r for r in event["Records"] if done in r["body"]]}
    client.lambda_.invoke("classify", done_only)
    [succeeded] = stack.published_events()
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "5"

    result = client.lambda_.invoke("dead_letters", event)

    assert result.payload == {"batchItemFailures": []}
    failed = job(client, stuck)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "retries_exhausted"
    assert "5 times" in failed["error"]["message"]
    assert job(client, done)["status"] == "SUCCEEDED"
    # The finished job's dead letter repeats its event (the attempt that finished it may have
    # died before announcing it): the same event, not a new one.
    events = {e["event"]["type"]: e["event"] for e in stack.published_events()}
    assert set(events) == {"job.failed", "job.succeeded"}
    assert events["job.succeeded"] == succeeded["event"]


def test_a_dead_letter_from_before_a_retry_leaves_the_retried_run_alone(
    client: Client, stack: Stack
) -> None:
    job_id = submit(client, cat_jpeg()).json_body["job_id"]
    first_run = stack.receive_jobs_event()
    client.lambda_.invoke("dead_letters", first_run)
    assert job(client, job_id)["status"] == "FAILED"
    assert retry(client, job_id).status_code == 202
    second_run = stack.receive_jobs_event()
    assert json.loads(second_run["Records"][0]["body"])["generation"] == 1

    client.lambda_.invoke("dead_letters", first_run)  # a stale copy of the old dead letter

    assert job(client, job_id)["status"] == "PENDING"
    client.lambda_.invoke("dead_letters", second_run)
    assert job(client, job_id)["error"]["code"] == "retries_exhausted"


def test_a_classifier_that_dies_mid_batch_loses_nothing_and_redoes_only_the_unfinished(
    client: Client, stack: Stack
) -> None:
    ids = [submit(client, cat_jpeg()).json_body["job_id"] for _ in range(4)]
    crashing = Settings.from_env({**_env(stack), "CRASH_RATE": "1"})
    service_with(stack, settings=crashing, rng=random.Random(3))
    event = stack.receive_jobs_event()

    with pytest.raises(SimulatedCrash):
        client.lambda_.invoke("classify", event)

    before = {i: job(client, i) for i in ids}
    finished = {i for i, j in before.items() if j["status"] == "SUCCEEDED"}
    assert {j["status"] for i, j in before.items() if i not in finished} == {"PROCESSING"}
    assert 0 < len(finished) < len(ids)  # it died mid-batch
    service_with(stack)  # a fresh container; SQS hands the whole batch over again
    assert client.lambda_.invoke("classify", event).payload == {"batchItemFailures": []}
    after = {i: job(client, i) for i in ids}
    assert {j["status"] for j in after.values()} == {"SUCCEEDED"}
    assert {i: j["predictions"] for i, j in after.items() if i in finished} == {
        i: before[i]["predictions"] for i in finished
    }
    assert {i: j["attempts"] for i, j in after.items()} == {
        i: 1 if i in finished else 2 for i in ids
    }
    # Every job announced; the finished ones again, with the same event (one id per job).
    ids_by_job: dict[str, set[str]] = {}
    for e in stack.published_events():
        ids_by_job.setdefault(e["event"]["job"]["job_id"], set()).add(e["event"]["id"])
    assert sorted(ids_by_job) == sorted(ids)
    assert {len(event_ids) for event_ids in ids_by_job.values()} == {1}
