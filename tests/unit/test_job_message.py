"""The jobs queue's message names a job and a run of it (its generation), nothing else: the
classifier takes the job's state from its record, whatever else an (older) body carries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from chalicelib.classify import BatchClassifier
from chalicelib.contract import Category, JobEvent, JobStatus, Model, Prediction
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRecord, Transition
from chalicelib.model_info import read_model_info
from chalicelib.queues import JobMessage
from chalicelib.settings import Settings
from chalicelib.wiring import classifier_loader
from tests.builders import sqs_record
from tests.photos import CAT_CLASSES, cat_jpeg

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

JOB_ID = "a" * 32

STORED = JobRecord(
    job_id=JOB_ID,
    owner="tenant",
    status=JobStatus.PENDING,
    attempts=0,
    created_at="2026-01-01T00:00:00.000Z",
    updated_at="2026-01-01T00:00:00.000Z",
    s3_key="images/tenant/" + JOB_ID,
    content_type="image/jpeg",
    size_bytes=1234,
    generation=2,
    webhook_url="https://example.com/hook",
)

# What a message of the old format carried: the record as it was queued. Here it says other
# things than the stored record does, so anything taken from it would show.
OLD_RECORD = STORED.model_copy(
    update={
        "owner": "intruder",
        "s3_key": "images/intruder/" + "b" * 32,
        "content_type": "image/png",
        "webhook_url": "https://evil.example/steal",
    }
)


class FakeJobs:
    """The classifier's job transitions (``classify.Jobs``) over records in a dict."""

    def __init__(self, *records: JobRecord) -> None:
        self.records = {r.job_id: r for r in records}
        self.starts: list[tuple[str, int]] = []

    def start(self, job_id: str, *, generation: int) -> Transition:
        self.starts.append((job_id, generation))
        current = self.records.get(job_id)
        if current is None or current.generation != generation or current.status.terminal:
            return Transition(None, current)
        started = current.model_copy(
            update={"status": JobStatus.PROCESSING, "attempts": current.attempts + 1}
        )
        self.records[job_id] = started
        return Transition(started)

    def succeed(
        self,
        started: JobRecord,
        *,
        predictions: list[Prediction],
        model: Model,
        timings_ms: dict[str, float],
        categories: list[Category] | None = None,
    ) -> JobRecord | None:
        done = started.model_copy(
            update={
                "status": JobStatus.SUCCEEDED,
                "predictions": predictions,
                "categories": categories,
                "model": model,
                "timings_ms": timings_ms,
            }
        )
        self.records[started.job_id] = done
        return done

    def fail(
        self, job_id: str, *, code: str, message: str, generation: int | None = None
    ) -> Transition:
        raise AssertionError(f"no job should fail here ({code}: {message})")


class FakeImages:
    """Images by key (``classify.Images``), remembering what was read."""

    def __init__(self, images: dict[str, bytes]) -> None:
        self.images = images
        self.reads: list[str] = []

    def get(self, key: str) -> bytes:
        self.reads.append(key)
        return self.images[key]


class RecordingSns:
    """The one SNS call the publisher makes for a batch, accepting every entry."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def publish_batch(self, **request: Any) -> dict[str, Any]:
        self.entries += request["PublishBatchRequestEntries"]
        return {"Successful": [{"Id": e["Id"]} for e in request["PublishBatchRequestEntries"]]}


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings.from_env({"CLASSIFY_WORKERS": "1"})


def classifier_over(
    settings: Settings, jobs: FakeJobs, images: FakeImages, sns: RecordingSns
) -> BatchClassifier:
    publisher = EventPublisher(
        cast("SNSClient", sns), topic_arn="arn:aws:sns:us-east-1:1:events", topic_name="events"
    )
    return BatchClassifier(
        settings=settings,
        repo=jobs,
        images=images,
        publisher=publisher,
        classifier=classifier_loader(settings),
        model=read_model_info(settings.model_dir),
    )


def test_the_body_is_the_job_id_and_generation_only() -> None:
    body = JobMessage(job_id=JOB_ID, generation=2).to_body()

    assert json.loads(body) == {"job_id": JOB_ID, "generation": 2}
    assert JobMessage.parse(body) == JobMessage(job_id=JOB_ID, generation=2)


@pytest.mark.parametrize(
    "extra",
    [
        {"job": OLD_RECORD.to_item()},  # the record an older sender put in the message
        {"job": "garbage"},
        {"job": {"job_id": {"S": "b" * 32}}},
        {"owner": "intruder", "s3_key": "images/intruder/x", "status": "SUCCEEDED"},
    ],
)
def test_a_body_with_extra_fields_is_accepted_and_its_extras_ignored(
    extra: dict[str, Any],
) -> None:
    body = json.dumps({"job_id": JOB_ID, "generation": 2, **extra})

    assert JobMessage.parse(body) == JobMessage(job_id=JOB_ID, generation=2)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"generation": 1}),
        json.dumps({"job_id": 5, "generation": 1}),
        json.dumps({"job_id": JOB_ID, "generation": -1}),
        json.dumps({"job_id": JOB_ID, "generation": "2"}),
        json.dumps({"job_id": JOB_ID, "generation": True}),
    ],
)
def test_a_body_that_names_no_job_and_run_is_not_a_message(body: str) -> None:
    assert JobMessage.parse(body) is None


def test_a_message_without_a_generation_is_of_the_first_run() -> None:
    assert JobMessage.parse(json.dumps({"job_id": JOB_ID})) == JobMessage(JOB_ID, 0)


def test_nothing_but_the_id_and_generation_of_the_body_reaches_the_classifier(
    settings: Settings,
) -> None:
    # GIVEN a stored job, and a message that also carries an old record saying other things
    jobs = FakeJobs(STORED)
    images = FakeImages({STORED.s3_key: cat_jpeg(), OLD_RECORD.s3_key: b"not this one"})
    sns = RecordingSns()
    body = json.dumps({"job_id": JOB_ID, "generation": 2, "job": OLD_RECORD.to_item()})

    # WHEN the classifier handles the message
    failed = classifier_over(settings, jobs, images, sns).process([SQSRecord(sqs_record(body))])

    # THEN it started the job by id and generation, and read the stored record's image
    assert failed == []
    assert jobs.starts == [(JOB_ID, 2)]
    assert images.reads == [STORED.s3_key]
    done = jobs.records[JOB_ID]
    assert done.status is JobStatus.SUCCEEDED
    assert done.predictions is not None
    assert done.predictions[0].class_id in CAT_CLASSES
    # and the event tells the stored record's tenant and job, not what the body said
    [entry] = sns.entries
    assert entry["MessageAttributes"]["tenant"]["StringValue"] == STORED.owner
    event = JobEvent.model_validate_json(entry["Message"])
    assert (event.job.content_type, event.job.webhook_url) == (
        STORED.content_type,
        STORED.webhook_url,
    )


def test_a_message_of_an_earlier_run_does_no_work_whatever_record_it_carries(
    settings: Settings,
) -> None:
    # GIVEN a job in its second run, and a first-run message carrying the current record
    jobs = FakeJobs(STORED)
    images = FakeImages({STORED.s3_key: cat_jpeg()})
    sns = RecordingSns()
    body = json.dumps({"job_id": JOB_ID, "generation": 1, "job": STORED.to_item()})

    # WHEN the classifier handles it
    failed = classifier_over(settings, jobs, images, sns).process([SQSRecord(sqs_record(body))])

    # THEN the message is acknowledged, and nothing is read, written or published
    assert failed == []
    assert jobs.starts == [(JOB_ID, 1)]
    assert images.reads == []
    assert jobs.records[JOB_ID] == STORED
    assert sns.entries == []
