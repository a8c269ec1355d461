"""Conditional transitions in DynamoDB (moto): late or repeated writes never move a job back."""

from __future__ import annotations

from chalicelib.jobs import Job, JobRepository, JobStatus, new_job_id, utc_now
from tests.functional.conftest import Stack

PRED = [{"class_id": 1, "label": "goldfish", "probability": 0.9}]
MODEL = {"name": "m", "version": "1"}


def new_job(repo: JobRepository) -> Job:
    now = utc_now()
    job = Job(
        job_id=new_job_id(),
        owner="a",
        status=JobStatus.PENDING,
        created_at=now,
        updated_at=now,
        s3_key="k",
        content_type="image/png",
        size_bytes=1,
    )
    repo.create(job)
    return job


def repo_of(stack: Stack) -> JobRepository:
    return JobRepository(stack.clients.dynamodb, stack.settings.table)


def test_start_counts_attempts_and_allows_a_crashed_attempt_to_restart(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    first = repo.start(job.job_id)
    second = repo.start(job.job_id)  # the first attempt died mid-way; SQS redelivered
    assert first is not None
    assert second is not None
    assert (first.attempts, second.attempts) == (1, 2)
    assert second.status is JobStatus.PROCESSING


def test_success_is_never_overwritten(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    started = repo.start(job.job_id)
    assert started is not None
    done = repo.succeed(started, predictions=PRED, model=MODEL, timings_ms={"total": 1.5})

    assert repo.start(job.job_id) is None
    assert repo.fail(job.job_id, code="late", message="late failure") is None
    assert repo.succeed(started, predictions=[], model=MODEL, timings_ms={}) is None
    stored = repo.get(job.job_id)
    assert stored is not None
    assert done == stored  # the job succeed() returns without reading it back is the record
    assert stored.status is JobStatus.SUCCEEDED
    assert stored.predictions == PRED
    assert stored.attempts == 1
    assert stored.timings_ms == {"total": 1.5}
    assert stored.error is None


def test_succeed_requires_processing_and_unknown_jobs_change_nothing(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    assert repo.succeed(job, predictions=PRED, model=MODEL, timings_ms={}) is None
    assert repo.start("f" * 32) is None
    assert repo.get("f" * 32) is None


def test_create_never_overwrites_an_existing_id(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    repo.start(job.job_id)
    assert repo.create(job) is False
    stored = repo.get(job.job_id)
    assert stored is not None
    assert stored.status is JobStatus.PROCESSING


def test_retry_only_from_failed_and_clears_the_error(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    assert repo.retry(job.job_id) is None
    repo.start(job.job_id)
    repo.fail(job.job_id, code="undecodable_image", message="bad")
    retried = repo.retry(job.job_id)
    assert retried is not None
    assert (retried.status, retried.error) == (JobStatus.PENDING, None)
    assert retried.attempts == 1
    assert repo.retry(job.job_id) is None


def _operations(stack: Stack) -> list[str]:
    """The DynamoDB operations the repository's client makes from now on, in order."""
    seen: list[str] = []
    stack.clients.dynamodb.meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: seen.append(model.name)
    )
    return seen


def test_start_from_the_queued_record_is_one_put_and_falls_back_when_it_is_stale(
    stack: Stack,
) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    calls = _operations(stack)

    first = repo.start(job.job_id, queued=job, receive_count=1)
    assert calls == ["PutItem"]  # no read-back: the message carried the record
    assert first is not None
    assert (first.status, first.attempts, first.created_at) == (
        JobStatus.PROCESSING,
        1,
        job.created_at,
    )
    assert repo.get(job.job_id) == first

    calls.clear()
    second = repo.start(job.job_id, queued=job, receive_count=2)  # SQS handed it over again
    assert calls == ["PutItem"]
    assert second is not None
    assert second.attempts == 2

    calls.clear()
    # A second message for the job (its first receive) no longer matches the stored count:
    # the attempt is counted by an update instead, never lost.
    third = repo.start(job.job_id, queued=job, receive_count=1)
    assert calls == ["PutItem", "UpdateItem"]
    assert third is not None
    assert third.attempts == 3
    assert repo.get(job.job_id) == third


def test_start_from_the_queued_record_never_reopens_a_finished_or_deleted_job(
    stack: Stack,
) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    started = repo.start(job.job_id, queued=job, receive_count=1)
    assert started is not None
    done = repo.succeed(started, predictions=PRED, model=MODEL, timings_ms={"total": 1.0})

    assert repo.start(job.job_id, queued=job, receive_count=1) is None
    assert repo.start(job.job_id, queued=job, receive_count=2) is None
    assert repo.get(job.job_id) == done

    gone = new_job(repo)
    repo.delete(gone.job_id)
    assert repo.start(gone.job_id, queued=gone, receive_count=1) is None
    assert repo.get(gone.job_id) is None


def test_a_queued_record_from_before_a_retry_is_not_written_back(stack: Stack) -> None:
    repo = repo_of(stack)
    job = new_job(repo)
    assert repo.fail(job.job_id, code="x", message="failed") is not None
    retried = repo.retry(job.job_id)
    assert retried is not None
    assert retried.generation == 1

    # The generation-0 record must not replace the retried one (its generation would go back).
    started = repo.start(job.job_id, queued=job, receive_count=1)
    assert started is not None
    assert started.generation == 1
    assert repo.get(job.job_id) == started
