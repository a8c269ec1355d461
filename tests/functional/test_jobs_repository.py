"""Conditional transitions in DynamoDB (moto): late or repeated writes never move a job back.

Every transition is one conditional write; a refused one hands back the record as it stands
(``ReturnValuesOnConditionCheckFailure``), so no test here expects a second read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.contract import Category, JobStatus, Model, Prediction
from chalicelib.dynamo import serialize
from chalicelib.job_store import JobRecord, JobRepository, new_job_id, utc_now
from tests.functional.conftest import KEY_A, Api, Stack

PRED = [Prediction(class_id=1, label="goldfish", probability=0.9)]
MODEL = Model(name="m", version="1")


def repo_of(stack: Stack) -> JobRepository:
    """The repository the installed services use (over the stack's DynamoDB client)."""
    return stack.services.adapters.repo


def new_job(repo: JobRepository, *, owner: str = "a", created_at: str | None = None) -> JobRecord:
    """A PENDING job, recorded."""
    now = utc_now()
    job = JobRecord(
        job_id=new_job_id(),
        owner=owner,
        status=JobStatus.PENDING,
        attempts=0,
        created_at=created_at or now,
        updated_at=created_at or now,
        s3_key="k",
        content_type="image/png",
        size_bytes=1,
    )
    assert repo.create(job).job == job
    return job


def started(repo: JobRepository, job_id: str, generation: int = 0) -> JobRecord:
    """Start the job, which must start."""
    start = repo.start(job_id, generation=generation)
    assert start.job is not None
    return start.job


def dynamodb_calls(stack: Stack) -> list[str]:
    """The DynamoDB operations the stack's client makes from now on, in order."""
    seen: list[str] = []

    def record(model: Any, **_: Any) -> None:
        seen.append(model.name)

    stack.clients.dynamodb.meta.events.register("before-call.dynamodb.*", record)
    return seen


def jobs_table_queries(stack: Stack) -> list[dict[str, Any]]:
    """The parameters of every Query of the jobs table the stack's client makes from now on."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == stack.settings.table:
            seen.append(dict(params))

    stack.clients.dynamodb.meta.events.register("before-parameter-build.dynamodb.Query", record)
    return seen


def test_start_counts_attempts_and_allows_a_crashed_attempt_to_restart(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)

    first = started(repo, job.job_id)
    second = started(repo, job.job_id)  # the first attempt died mid-way; SQS redelivered

    assert (first.attempts, second.attempts) == (1, 2)
    assert second.status is JobStatus.PROCESSING


def test_starting_a_queued_job_is_one_update_that_returns_the_started_record(
    stack: Stack,
) -> None:
    # GIVEN a PENDING job
    repo = repo_of(stack)
    job = new_job(repo)
    calls = dynamodb_calls(stack)

    # WHEN its message starts it
    start = repo.start(job.job_id, generation=0)

    # THEN one conditional UpdateItem both moved it and handed back the record: no read
    assert calls == ["UpdateItem"]
    assert start.job is not None
    assert start.current is None
    assert (start.job.status, start.job.attempts, start.job.generation) == (
        JobStatus.PROCESSING,
        1,
        0,
    )
    unchanged = {"job_id", "owner", "s3_key", "created_at", "content_type", "size_bytes"}
    assert start.job.model_dump(include=unchanged) == job.model_dump(include=unchanged)
    assert repo.get(job.job_id) == start.job


def _succeeded(repo: JobRepository, job: JobRecord) -> JobRecord | None:
    done = repo.succeed(
        started(repo, job.job_id), predictions=PRED, model=MODEL, timings_ms={"total": 1.0}
    )
    assert done is not None
    return done


def _failed(repo: JobRepository, job: JobRecord) -> JobRecord | None:
    failed = repo.fail(job.job_id, code="undecodable_image", message="bad")
    assert failed.job is not None
    return failed.job


def _deleted(repo: JobRepository, job: JobRecord) -> JobRecord | None:
    repo.delete(job.job_id)
    return None


def _retried(repo: JobRepository, job: JobRecord) -> JobRecord | None:
    _failed(repo, job)
    retried = repo.retry(job.job_id)
    assert retried.job is not None
    assert retried.job.generation == 1
    return retried.job


@pytest.mark.parametrize(
    "become",
    [_succeeded, _failed, _deleted, _retried],
    ids=["succeeded", "failed", "deleted", "retried-since"],
)
def test_a_refused_start_is_one_update_that_hands_back_the_stored_record(
    stack: Stack, become: Callable[[JobRepository, JobRecord], JobRecord | None]
) -> None:
    # GIVEN a job that finished, was deleted, or was retried since its message was sent
    repo = repo_of(stack)
    job = new_job(repo)
    stored = become(repo, job)
    calls = dynamodb_calls(stack)

    # WHEN a generation-0 message tries to start it
    start = repo.start(job.job_id, generation=0)

    # THEN one UpdateItem, refused, brought back the record as it stands (None: gone)
    assert calls == ["UpdateItem"]
    assert start.job is None
    assert start.current == stored
    assert repo.get(job.job_id) == stored  # and nothing changed


def test_a_message_of_an_earlier_generation_does_not_start_the_retried_job(
    stack: Stack,
) -> None:
    # GIVEN a job that failed, was retried (generation 1) and whose new run has started
    repo = repo_of(stack)
    job = new_job(repo)
    started(repo, job.job_id)
    assert repo.fail(job.job_id, code="x", message="failed", generation=0).job is not None
    assert repo.retry(job.job_id).job is not None
    assert repo.start(job.job_id, generation=0).job is None  # not before the new run starts
    running = started(repo, job.job_id, generation=1)

    # WHEN a copy of the generation-0 message arrives
    stale = repo.start(job.job_id, generation=0)

    # THEN it is refused and the new run's attempts are not counted for it
    assert stale.job is None
    assert stale.current == running
    assert (running.generation, running.attempts) == (1, 2)
    assert repo.get(job.job_id) == running


def test_fail_with_a_stale_generation_is_refused(stack: Stack) -> None:
    # GIVEN a job retried into generation 1
    repo = repo_of(stack)
    job = new_job(repo)
    assert repo.fail(job.job_id, code="x", message="failed").job is not None
    retried = repo.retry(job.job_id).job
    assert retried is not None

    # WHEN a dead letter of generation 0 fails it
    stale = repo.fail(job.job_id, code="retries_exhausted", message="late", generation=0)

    # THEN the retried run is left alone, and a failure of its own generation still lands
    assert stale.job is None
    assert stale.current == retried
    assert repo.get(job.job_id) == retried
    current = repo.fail(job.job_id, code="retries_exhausted", message="now", generation=1)
    assert current.job is not None
    assert current.job.status is JobStatus.FAILED
    assert current.job.error is not None
    assert current.job.error.code == "retries_exhausted"


def test_success_is_never_overwritten(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    first = started(repo, job.job_id)
    done = repo.succeed(first, predictions=PRED, model=MODEL, timings_ms={"total": 1.5})
    assert done is not None

    late_start = repo.start(job.job_id, generation=0)
    late_failure = repo.fail(job.job_id, code="late", message="late failure")
    retry = repo.retry(job.job_id)

    assert (late_start.job, late_failure.job, retry.job) == (None, None, None)
    assert late_start.current == late_failure.current == retry.current == done
    assert repo.succeed(first, predictions=[], model=MODEL, timings_ms={}) is None
    stored = repo.get(job.job_id)
    assert stored is not None
    assert done == stored  # the job succeed() returns without reading it back is the record
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.predictions == PRED
    assert stored.model == MODEL
    assert stored.attempts == 1
    assert stored.timings_ms == {"total": 1.5}
    assert stored.error is None


def test_a_finished_jobs_documents_are_stored_as_one_string_each(stack: Stack) -> None:
    # GIVEN a finished job with labels, categories, a model, timings and options
    repo = repo_of(stack)
    job = new_job(repo)
    cats = [Category(name="cat", probability=0.95), Category(name="mammal", probability=0.97)]
    done = repo.succeed(
        started(repo, job.job_id),
        predictions=PRED,
        categories=cats,
        model=MODEL,
        timings_ms={"decode": 2.25, "total": 9.5},
    )
    assert done is not None

    # WHEN its item is read as stored
    item = stack.clients.dynamodb.get_item(
        TableName=stack.settings.table, Key={"job_id": {"S": job.job_id}}
    )["Item"]

    # THEN each document is one string attribute, not a tree of typed values
    for name in ("predictions", "categories", "model", "timings_ms", "options"):
        assert set(item[name]) == {"S"}, name
    assert json.loads(item["predictions"]["S"])[0]["label"] == "goldfish"
    # ... and the record reads back whole
    assert repo.get(job.job_id) == done


def test_a_record_stored_with_typed_documents_reads_the_same(stack: Stack) -> None:
    # GIVEN a finished job's item as records were written before: lists and maps
    repo = repo_of(stack)
    job = new_job(repo)
    done = repo.succeed(
        started(repo, job.job_id), predictions=PRED, model=MODEL, timings_ms={"total": 1.5}
    )
    assert done is not None
    typed = {
        "predictions": serialize([p.model_dump(mode="json") for p in PRED]),
        "model": serialize(MODEL.model_dump(mode="json")),
        "timings_ms": serialize({"total": 1.5}),
        "options": serialize(done.options.model_dump(mode="json")),
    }
    item = {**done.to_item(), **typed}
    stack.clients.dynamodb.put_item(TableName=stack.settings.table, Item=item)

    # WHEN it is read, THEN it is the same record
    assert repo.get(job.job_id) == done


def test_a_result_written_after_a_cancel_is_refused(stack: Stack) -> None:
    # GIVEN a job being classified, canceled before its result is written
    repo = repo_of(stack)
    job = new_job(repo)
    running = started(repo, job.job_id)
    canceled = repo.cancel(job.job_id)
    assert canceled.job is not None
    assert canceled.job.status is JobStatus.CANCELED

    # WHEN the classifier writes the result, a late start or failure comes, or it is retried
    late_result = repo.succeed(running, predictions=PRED, model=MODEL, timings_ms={})
    late_start = repo.start(job.job_id, generation=0)
    late_failure = repo.fail(job.job_id, code="late", message="late failure", generation=0)
    retry = repo.retry(job.job_id)

    # THEN each conditional write is refused: the job stays CANCELED, without a result
    assert late_result is None
    assert (late_start.job, late_failure.job, retry.job) == (None, None, None)
    assert late_start.current == canceled.job
    stored = repo.get(job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.CANCELED
    assert stored.predictions is None


def test_a_finished_job_cannot_be_canceled(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    done = repo.succeed(started(repo, job.job_id), predictions=PRED, model=MODEL, timings_ms={})
    failed = new_job(repo)
    repo.fail(failed.job_id, code="x", message="y")

    refused = repo.cancel(job.job_id)
    refused_failed = repo.cancel(failed.job_id)

    assert (refused.job, refused_failed.job) == (None, None)
    assert refused.current == done
    assert refused_failed.current is not None
    assert refused_failed.current.status is JobStatus.FAILED


def test_a_failed_job_is_reopened_only_by_retry(stack: Stack) -> None:
    # GIVEN a job a dead letter failed while an attempt was still running
    repo = repo_of(stack)
    job = new_job(repo)
    running = started(repo, job.job_id)
    failed = repo.fail(job.job_id, code="retries_exhausted", message="gave up", generation=0)
    assert failed.job is not None

    # WHEN the running attempt finishes, or another message or failure arrives
    late_result = repo.succeed(running, predictions=PRED, model=MODEL, timings_ms={})
    late_start = repo.start(job.job_id, generation=0)
    late_failure = repo.fail(job.job_id, code="other", message="again")

    # THEN the job stays FAILED with its first reason, until a retry reopens it
    assert late_result is None
    assert late_start.current == late_failure.current == failed.job
    assert repo.get(job.job_id) == failed.job
    retried = repo.retry(job.job_id).job
    assert retried is not None
    assert (retried.status, retried.generation) == (JobStatus.PENDING, 1)


def test_a_record_from_before_a_retry_never_overwrites_the_retried_job(stack: Stack) -> None:
    # GIVEN a generation-0 attempt that started, then the job failed, was retried and restarted
    repo = repo_of(stack)
    job = new_job(repo)
    old_run = started(repo, job.job_id)
    assert repo.fail(job.job_id, code="x", message="failed", generation=0).job is not None
    assert repo.retry(job.job_id).job is not None
    new_run = started(repo, job.job_id, generation=1)

    # WHEN the old attempt's result arrives, and the old record is created again
    late_result = repo.succeed(old_run, predictions=PRED, model=MODEL, timings_ms={})
    recreated = repo.create(job)

    # THEN neither replaces the retried run (its generation would go back)
    assert late_result is None
    assert recreated.job is None
    assert recreated.current == new_run
    assert repo.get(job.job_id) == new_run
    done = repo.succeed(new_run, predictions=PRED, model=MODEL, timings_ms={})
    assert done is not None
    assert (done.status, done.generation) == (JobStatus.SUCCEEDED, 1)


def test_succeed_requires_processing_and_unknown_jobs_change_nothing(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    unknown = "f" * 32

    assert repo.succeed(job, predictions=PRED, model=MODEL, timings_ms={}) is None
    assert repo.get(job.job_id) == job
    for transition in (
        repo.start(unknown, generation=0),
        repo.fail(unknown, code="x", message="x"),
        repo.retry(unknown),
    ):
        assert (transition.job, transition.current) == (None, None)
    assert repo.get(unknown) is None


def test_create_of_an_existing_id_is_refused_and_hands_back_the_existing_record(
    stack: Stack,
) -> None:
    # GIVEN a job that has started
    repo = repo_of(stack)
    job = new_job(repo)
    running = started(repo, job.job_id)
    calls = dynamodb_calls(stack)

    # WHEN a record with its id is created again (a concurrent request with the same key)
    again = repo.create(job)

    # THEN one refused PutItem brought back the stored record, unchanged
    assert calls == ["PutItem"]
    assert again.job is None
    assert again.current == running
    assert repo.get(job.job_id) == running


def test_retry_only_from_failed_and_clears_the_error(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    refused = repo.retry(job.job_id)
    assert refused.job is None
    assert refused.current == job
    started(repo, job.job_id)
    repo.fail(job.job_id, code="undecodable_image", message="bad")

    retried = repo.retry(job.job_id).job

    assert retried is not None
    assert (retried.status, retried.error) == (JobStatus.PENDING, None)
    assert (retried.attempts, retried.generation) == (1, 1)
    again = repo.retry(job.job_id)
    assert again.job is None
    assert again.current == retried


def _thirty_jobs_three_oldest_succeeded(stack: Stack) -> list[str]:
    """30 of tenant a's jobs, oldest first; the three oldest SUCCEEDED, the rest PENDING."""
    repo = repo_of(stack)
    ids = []
    for i in range(30):
        job = new_job(repo, created_at=f"2026-01-01T00:00:{i:02d}.000Z")
        if i < 3:
            _succeeded(repo, job)
        ids.append(job.job_id)
    new_job(repo, owner="b")  # another tenant's job is in the index too
    return ids


def test_a_filtered_page_is_one_query_however_many_jobs_the_tenant_has(
    api: Api, stack: Stack
) -> None:
    # GIVEN 30 jobs of which only the three oldest match the filter (last in newest-first order)
    ids = _thirty_jobs_three_oldest_succeeded(stack)
    queries = jobs_table_queries(stack)

    # WHEN a page of the SUCCEEDED ones is asked for
    page = api.get("/jobs", key=KEY_A, query={"status": "SUCCEEDED", "limit": "20"})

    # THEN one Query found all three, and there is no next page
    assert page.status == 200
    assert [j["job_id"] for j in page.json["jobs"]] == list(reversed(ids[:3]))
    assert page.json["next_token"] is None
    assert len(queries) == 1
    assert "Limit" not in queries[0]  # DynamoDB filters up to 1 MB of the index in one call


def test_an_unfiltered_page_is_one_query(api: Api, stack: Stack) -> None:
    # GIVEN 30 jobs
    ids = _thirty_jobs_three_oldest_succeeded(stack)
    queries = jobs_table_queries(stack)

    # WHEN they are listed 20 to a page
    first = api.get("/jobs", key=KEY_A, query={"limit": "20"}).json
    assert len(queries) == 1
    second = api.get(
        "/jobs", key=KEY_A, query={"limit": "20", "next_token": first["next_token"]}
    ).json

    # THEN each page was one Query, and together they are every job, newest first
    assert len(queries) == 2
    assert [q["Limit"] for q in queries] == [20, 20]
    assert [j["job_id"] for j in first["jobs"] + second["jobs"]] == list(reversed(ids))
    assert len(first["jobs"]) == 20
    assert second["next_token"] is None
