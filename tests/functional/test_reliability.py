"""At-least-once delivery, partial batches, retries, idempotency and dead letters (moto)."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from chalicelib.classify import BatchClassifier, Images, Jobs
from chalicelib.errors import TransientError
from chalicelib.image_store import ImageStore
from chalicelib.job_actions import JobActions
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRecord, JobRepository, Transition
from chalicelib.queues import JobQueue
from chalicelib.settings import Settings
from chalicelib.wiring import classifier_loader
from infra.faults import SimulatedCrash, with_faults
from tests.functional.conftest import KEY_B, Api, Stack
from tests.photos import CAT_CLASSES, COFFEE, cat_jpeg


class ThrottledImages:
    """Image reads that S3 throttles for chosen jobs."""

    def __init__(self, inner: Images, failing: set[str]) -> None:
        self._inner = inner
        self.failing = failing

    def get(self, key: str) -> bytes:
        """The image, unless it belongs to a failing job."""
        if any(key.endswith(job_id) for job_id in self.failing):
            raise TransientError("SlowDown")
        return self._inner.get(key)


class DownQueue(JobQueue):
    """The jobs queue, refusing sends while ``down`` is set.

    A subclass only so the use cases accept it (they take a ``JobQueue``); every call goes to
    ``inner``.
    """

    def __init__(self, inner: JobQueue) -> None:
        self._inner = inner
        self.down = True

    def send(self, job_id: str, generation: int, *, tenant: str) -> None:
        """Queue the run, unless SQS is down."""
        if self.down:
            raise TransientError("SQS unavailable")
        self._inner.send(job_id, generation, tenant=tenant)


def classifier_around(
    stack: Stack,
    *,
    images: Images | None = None,
    repo: Jobs | None = None,
    publisher: EventPublisher | None = None,
    settings: Settings | None = None,
) -> BatchClassifier:
    """The real classifier over moto, with some of its collaborators replaced."""
    adapters = stack.services.adapters
    settings = settings or stack.settings
    return BatchClassifier(
        settings=settings,
        repo=repo or adapters.repo,
        images=images or adapters.images,
        publisher=publisher or adapters.publisher,
        classifier=classifier_loader(settings),
        model=stack.services.model,
        cache=stack.services.cache,
    )


def message_ids(event: dict[str, Any]) -> dict[str, str]:
    """The message id of each job's record in a Lambda SQS event."""
    return {json.loads(r["body"])["job_id"]: r["messageId"] for r in event["Records"]}


def test_one_transient_failure_does_not_rerun_its_neighbours(api: Api, stack: Stack) -> None:
    # GIVEN three queued jobs, and S3 throttling the second one's image
    ids = [api.submit(cat_jpeg()) for _ in range(3)]
    real = stack.services.classify
    images = ThrottledImages(stack.services.adapters.images, {ids[1]})
    stack.install(classify=classifier_around(stack, images=images))
    event = stack.receive_jobs_event()
    by_job = message_ids(event)

    # WHEN the batch is classified
    result = api.invoke("classify", event)

    # THEN only its message goes back; the others finished once
    assert result == {"batchItemFailures": [{"itemIdentifier": by_job[ids[1]]}]}
    assert [api.job(i)["status"] for i in ids] == ["SUCCEEDED", "PROCESSING", "SUCCEEDED"]

    stack.install(classify=real)  # S3 recovers; SQS hands the failed message over again
    again = {"Records": [r for r in event["Records"] if r["messageId"] == by_job[ids[1]]]}
    assert api.invoke("classify", again) == {"batchItemFailures": []}
    recovered = api.job(ids[1])
    assert (recovered["status"], recovered["attempts"]) == ("SUCCEEDED", 2)
    assert api.job(ids[0])["attempts"] == 1


def test_without_fault_settings_the_services_are_left_as_they_are(stack: Stack) -> None:
    assert with_faults(stack.services, stack.settings) is stack.services


def test_fault_rate_fails_image_reads_transiently(api: Api, stack: Stack) -> None:
    # GIVEN four queued jobs, and the local runtime's faults with every image read failing
    ids = [api.submit(cat_jpeg()) for _ in range(4)]
    faulty = stack.settings.model_copy(update={"fault_rate": 1.0, "fault_seed": 7})
    stack.install(classify=with_faults(stack.services, faulty).classify)

    # WHEN the batch is classified
    result = api.invoke("classify", stack.receive_jobs_event())

    # THEN every message goes back, each job started once and left PROCESSING for the retry
    assert len(result["batchItemFailures"]) == 4
    assert {api.job(i)["status"] for i in ids} == {"PROCESSING"}
    assert {api.job(i)["attempts"] for i in ids} == {1}
    assert stack.published_events() == []


def test_same_job_twice_in_one_batch_runs_once(api: Api, stack: Stack) -> None:
    job_id = api.submit(cat_jpeg())
    event = stack.receive_jobs_event()
    twin = dict(event["Records"][0], messageId="duplicate-delivery")
    event["Records"].append(twin)

    assert api.invoke("classify", event) == {"batchItemFailures": []}
    assert api.job(job_id)["attempts"] == 1
    assert len(stack.published_events()) == 1


def test_retry_moves_failed_to_pending_and_requeues(api: Api, stack: Stack) -> None:
    bad = api.submit(cat_jpeg()[:4000])
    api.classify_queued()
    assert api.job(bad)["status"] == "FAILED"

    resp = api.post(f"/jobs/{bad}/retry")

    assert resp.status == 202
    assert resp.json["status"] == "PENDING"
    assert api.job(bad)["error"] is None
    requeued = stack.receive_jobs_event()["Records"]
    assert [json.loads(r["body"]) for r in requeued] == [{"job_id": bad, "generation": 1}]


@pytest.mark.parametrize("state", ["PENDING", "SUCCEEDED"])
def test_retry_of_a_job_that_has_not_failed_is_409(api: Api, state: str) -> None:
    job_id = api.submit(cat_jpeg())
    if state == "SUCCEEDED":
        api.classify_queued()
    assert api.job(job_id)["status"] == state

    resp = api.post(f"/jobs/{job_id}/retry")

    assert resp.status == 409
    assert resp.error_code == "not_retryable"
    assert state in resp.json["error"]["message"]


def test_retry_of_unknown_or_foreign_job_is_404(api: Api) -> None:
    job_id = api.submit(cat_jpeg())
    assert api.post(f"/jobs/{'0' * 32}/retry").status == 404
    assert api.post(f"/jobs/{job_id}/retry", key=KEY_B).status == 404


def test_queue_outage_is_503_and_the_job_is_kept_failed_and_retryable(
    api: Api, stack: Stack
) -> None:
    # GIVEN SQS refusing every send
    a = stack.services.adapters
    down = DownQueue(a.jobs_queue)
    stack.install(
        submit=stack.submitter(queue=down),
        jobs=JobActions(
            settings=stack.settings,
            repo=a.repo,
            images=a.images,
            queue=down,
            deliveries=a.deliveries,
        ),
    )

    # WHEN an image is submitted
    resp = api.post_image(cat_jpeg())

    # THEN the client may try again, and the recorded job is FAILED, not lost
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.error_code == "queue_unavailable"
    listed = api.get("/jobs").json["jobs"]
    assert [(j["status"], j["error"]["code"]) for j in listed] == [("FAILED", "enqueue_failed")]
    down.down = False
    assert api.post(f"/jobs/{listed[0]['job_id']}/retry").status == 202
    api.classify_queued()
    assert api.job(listed[0]["job_id"])["predictions"][0]["class_id"] in CAT_CLASSES


class WatchedWrites:
    """The image store and the jobs repository of a submission, noting the order of their
    writes; the image's ``put`` can wait a while for the record's write to begin, or fail."""

    def __init__(self, stack: Stack, *, image_fails: bool = False) -> None:
        self.order: list[str] = []
        self.record_begun = threading.Event()
        self.image_saw_record_begun: bool | None = None
        self._image_fails = image_fails
        watched = self

        class Images(ImageStore):
            def put(self, key: str, data: bytes, content_type: str) -> None:
                watched.order.append("image")
                watched.image_saw_record_begun = watched.record_begun.wait(timeout=2)
                if watched._image_fails:
                    raise TransientError("S3 put failed: SlowDown")
                super().put(key, data, content_type)

        class Repo(JobRepository):
            def create(self, job: JobRecord) -> Transition:
                watched.order.append("record")
                watched.record_begun.set()
                return super().create(job)

        self.images = Images(stack.clients.s3, stack.settings.bucket)
        self.repo = Repo(stack.clients.dynamodb, stack.settings.table)
        stack.install(submit=stack.submitter(repo=self.repo, images=self.images))


def test_a_new_jobs_image_and_record_are_written_side_by_side(api: Api, stack: Stack) -> None:
    # GIVEN an image store that waits (up to 2 s) for the record's write to begin
    writes = WatchedWrites(stack)

    # WHEN an image is submitted without an Idempotency-Key
    job_id = api.submit(cat_jpeg())

    # THEN the record's write began while the image was being stored, and the job is whole
    assert writes.image_saw_record_begun is True
    api.classify_queued()
    assert api.job(job_id)["status"] == "SUCCEEDED"


def test_an_image_that_cannot_be_stored_leaves_no_job_behind(api: Api, stack: Stack) -> None:
    # GIVEN S3 refusing the image, while the record is written beside it
    writes = WatchedWrites(stack, image_fails=True)

    # WHEN an image is submitted
    resp = api.post_image(cat_jpeg())

    # THEN the client may try again, and nothing of the attempt is left: no record, no message
    assert resp.status == 503
    assert sorted(writes.order) == ["image", "record"]
    assert api.get("/jobs").json["jobs"] == []
    assert stack.receive_jobs_event()["Records"] == []


def test_with_an_idempotency_key_the_image_is_stored_before_the_record(
    api: Api, stack: Stack
) -> None:
    # GIVEN a submission whose job id another request can know (its Idempotency-Key's)
    writes = WatchedWrites(stack)

    # WHEN it is made
    api.submit(cat_jpeg(), headers={"Idempotency-Key": "order-7"})

    # THEN a replay finding the record finds its image too: the image was stored first
    assert writes.order == ["image", "record"]
    assert writes.image_saw_record_begun is False


def test_idempotency_key_returns_the_same_job_once(api: Api, stack: Stack) -> None:
    key = {"Idempotency-Key": "order-42"}
    first = api.post_image(cat_jpeg(), headers=key)
    second = api.post_image(cat_jpeg(), headers=key)
    other_tenant = api.post_image(cat_jpeg(), key=KEY_B, headers=key)

    assert first.status == second.status == 202
    assert first.json["job_id"] == second.json["job_id"]
    assert other_tenant.json["job_id"] != first.json["job_id"]
    api.classify_queued()
    assert api.job(first.json["job_id"])["status"] == "SUCCEEDED"
    again = api.post_image(cat_jpeg(), headers=key)
    assert again.json == {**first.json, "status": "SUCCEEDED"}
    assert stack.receive_jobs_event()["Records"] == []  # a finished job is not queued again


def test_idempotency_key_with_another_image_is_409(api: Api) -> None:
    api.post_image(cat_jpeg(), headers={"Idempotency-Key": "k1"})

    resp = api.post_image(COFFEE.read_bytes(), "image/png", headers={"Idempotency-Key": "k1"})

    assert resp.status == 409
    assert resp.error_code == "idempotency_key_reused"


def test_dead_letters_end_jobs_failed_but_never_undo_a_success(api: Api, stack: Stack) -> None:
    # GIVEN two jobs SQS gave up on, one of which did finish
    stuck = api.submit(cat_jpeg())
    done = api.submit(cat_jpeg())
    event = stack.receive_jobs_event()
    api.invoke("classify", {"Records": [r for r in event["Records"] if done in r["body"]]})
    [succeeded] = stack.published_events()
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "5"

    # WHEN their dead letters are handled
    result = api.invoke("dead_letters", event)

    # THEN the unfinished one is FAILED, saying why; the finished one stays SUCCEEDED
    assert result == {"batchItemFailures": []}
    failed = api.job(stuck)
    assert failed["status"] == "FAILED"
    assert failed["error"]["code"] == "retries_exhausted"
    assert "5 times" in failed["error"]["message"]
    assert api.job(done)["status"] == "SUCCEEDED"
    # The finished job's dead letter repeats its event (the attempt that finished it may have
    # died before announcing it): the same event, not a new one.
    events = {e["event"]["type"]: e["event"] for e in stack.published_events()}
    assert set(events) == {"job.failed", "job.succeeded"}
    assert events["job.succeeded"] == succeeded["event"]


def test_a_dead_letter_from_before_a_retry_leaves_the_retried_run_alone(
    api: Api, stack: Stack
) -> None:
    job_id = api.submit(cat_jpeg())
    first_run = stack.receive_jobs_event()
    api.invoke("dead_letters", first_run)
    assert api.job(job_id)["status"] == "FAILED"
    assert api.post(f"/jobs/{job_id}/retry").status == 202
    second_run = stack.receive_jobs_event()
    assert json.loads(second_run["Records"][0]["body"])["generation"] == 1

    api.invoke("dead_letters", first_run)  # a stale copy of the old dead letter

    assert api.job(job_id)["status"] == "PENDING"
    api.invoke("dead_letters", second_run)
    assert api.job(job_id)["error"]["code"] == "retries_exhausted"


def test_a_classifier_that_dies_mid_batch_loses_nothing_and_redoes_only_the_unfinished(
    api: Api, stack: Stack
) -> None:
    # GIVEN four queued jobs and the local runtime's crashes: with this seed the batch dies
    # writing its third result. One worker, so the crash stops the batch where it happens, as a
    # killed process would (with a pool, writes already under way would land after it).
    ids = [api.submit(cat_jpeg()) for _ in range(4)]
    real = stack.services.classify
    crashing = stack.settings.model_copy(
        update={"crash_rate": 0.9, "fault_seed": 2, "classify_workers": 1}
    )
    stack.install(classify=with_faults(stack.services, crashing).classify)
    event = stack.receive_jobs_event()

    # WHEN the batch is classified, the handler dies
    with pytest.raises(SimulatedCrash):
        api.invoke("classify", event)

    # THEN the results written before the crash stay; the rest are PROCESSING
    before = {i: api.job(i) for i in ids}
    finished = {i for i, j in before.items() if j["status"] == "SUCCEEDED"}
    assert {j["status"] for i, j in before.items() if i not in finished} == {"PROCESSING"}
    assert 0 < len(finished) < len(ids)  # it died mid-batch
    assert stack.published_events() == []  # it died before announcing anything
    # AND a fresh container, handed the whole batch again, finishes only the unfinished
    stack.install(classify=real)
    assert api.invoke("classify", event) == {"batchItemFailures": []}
    after = {i: api.job(i) for i in ids}
    assert {j["status"] for j in after.values()} == {"SUCCEEDED"}
    assert {i: j["predictions"] for i, j in after.items() if i in finished} == {
        i: before[i]["predictions"] for i in finished
    }
    assert {i: j["attempts"] for i, j in after.items()} == {
        i: 1 if i in finished else 2 for i in ids
    }
    # Every job announced; the finished ones by the redelivery that found them done (one id
    # per job).
    ids_by_job: dict[str, set[str]] = {}
    for e in stack.published_events():
        ids_by_job.setdefault(e["event"]["job"]["job_id"], set()).add(e["event"]["id"])
    assert sorted(ids_by_job) == sorted(ids)
    assert {len(event_ids) for event_ids in ids_by_job.values()} == {1}
