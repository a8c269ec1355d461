"""The jobs queue's message: the job, its generation, and the record as it was queued."""

from __future__ import annotations

import json

from chalicelib.jobs import Job, JobStatus
from chalicelib.queue import JobMessage

JOB = Job(
    job_id="a" * 32,
    owner="tenant",
    status=JobStatus.PENDING,
    created_at="2026-01-01T00:00:00.000Z",
    updated_at="2026-01-01T00:00:00.000Z",
    s3_key="images/tenant/" + "a" * 32,
    content_type="image/jpeg",
    size_bytes=1234,
    generation=2,
    webhook_url="https://example.com/hook",
)


def test_the_record_travels_with_the_message() -> None:
    body = JobMessage(job_id=JOB.job_id, generation=2, queued=JOB).to_body()
    parsed = JobMessage.parse(body)
    assert parsed == JobMessage(job_id=JOB.job_id, generation=2, queued=JOB)


def test_a_message_without_a_usable_record_still_names_its_job() -> None:
    plain = {"job_id": JOB.job_id, "generation": 2}
    for extra in ({}, {"job": "garbage"}, {"job": {"job_id": {"S": JOB.job_id}}}):
        parsed = JobMessage.parse(json.dumps({**plain, **extra}))
        assert parsed == JobMessage(job_id=JOB.job_id, generation=2, queued=None)


def test_a_record_of_another_job_or_generation_is_ignored() -> None:
    record = JOB.to_item()
    for job_id, generation in ((JOB.job_id, 1), ("b" * 32, 2)):
        body = json.dumps({"job_id": job_id, "generation": generation, "job": record})
        parsed = JobMessage.parse(body)
        assert parsed is not None
        assert parsed.queued is None
        assert (parsed.job_id, parsed.generation) == (job_id, generation)
