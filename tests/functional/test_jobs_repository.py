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
