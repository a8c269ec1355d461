"""A batch's results: written one conditional write per job, announced in one SNS PublishBatch.

An event SNS did not accept is never marked sent: its message goes back to SQS, and the
redelivery publishes it. Every other job in the batch is finished and acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.errors import TransientError
from chalicelib.jobs import Job
from chalicelib.notify import EventPublisher
from chalicelib.telemetry import REGISTRY
from tests.functional.conftest import KEY_A, Stack
from tests.functional.test_reliability import service_with
from tests.photos import CAT_CLASSES, cat_jpeg


class RefusingPublisher(EventPublisher):
    """SNS that refuses the events of chosen jobs (or, with ``down``, every request)."""

    def __init__(self, inner: EventPublisher, refused: set[str], *, down: bool = False) -> None:
        self.__dict__.update(inner.__dict__)
        self.refused = refused
        self.down = down
        self.requests = 0

    def publish_many(self, jobs: Sequence[Job]) -> set[str]:
        self.requests += 1
        if self.down:
            raise TransientError("SNS unavailable")
        accepted = [job for job in jobs if job.job_id not in self.refused]
        return super().publish_many(accepted) | {j.job_id for j in jobs if j not in accepted}


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(app) as c:
        yield c


def submit(client: Client, count: int) -> list[str]:
    return [
        client.http.post(
            "/jobs", headers={"x-api-key": KEY_A, "content-type": "image/jpeg"}, body=cat_jpeg()
        ).json_body["job_id"]
        for _ in range(count)
    ]


def job(client: Client, job_id: str) -> dict[str, Any]:
    return dict(client.http.get(f"/jobs/{job_id}", headers={"x-api-key": KEY_A}).json_body)


def publisher(stack: Stack) -> EventPublisher:
    return EventPublisher(
        stack.clients.sns, topic_arn=stack.settings.topic_arn, topic_name=stack.settings.topic_name
    )


def test_a_full_batch_is_announced_in_one_request_with_every_event(
    client: Client, stack: Stack
) -> None:
    ids = submit(client, 10)
    counting = RefusingPublisher(publisher(stack), set())
    service_with(stack, publisher=counting)
    writes, publishes = REGISTRY.summary("result_write_ms"), REGISTRY.summary("event_publish_ms")

    result = client.lambda_.invoke("classify", stack.receive_jobs_event())

    assert result.payload == {"batchItemFailures": []}
    assert counting.requests == 1
    events = stack.published_events()
    assert sorted(e["event"]["job"]["job_id"] for e in events) == sorted(ids)
    assert {e["event"]["type"] for e in events} == {"job.succeeded"}
    assert {e["attributes"]["tenant"]["Value"] for e in events} == {"a"}
    assert {e["attributes"]["type"]["Value"] for e in events} == {"job.succeeded"}
    for job_id in ids:
        record = job(client, job_id)
        assert record["predictions"][0]["class_id"] in CAT_CLASSES
        stages = {"start", "queue_wait", "s3_get", "decode", "inference", "total"}
        assert stages <= set(record["timings_ms"])
    # The batch's stages are metrics, once a batch: the write and the publish, per image.
    assert REGISTRY.summary("result_write_ms")[0] == writes[0] + 1
    assert REGISTRY.summary("event_publish_ms")[0] == publishes[0] + 1


def test_an_event_sns_refused_goes_back_to_the_queue_and_is_published_on_redelivery(
    client: Client, stack: Stack
) -> None:
    ids = submit(client, 3)
    service_with(stack, publisher=RefusingPublisher(publisher(stack), {ids[1]}))
    event = stack.receive_jobs_event()
    by_job = {json.loads(r["body"])["job_id"]: r["messageId"] for r in event["Records"]}

    result = client.lambda_.invoke("classify", event)

    assert result.payload == {"batchItemFailures": [{"itemIdentifier": by_job[ids[1]]}]}
    assert [job(client, i)["status"] for i in ids] == ["SUCCEEDED"] * 3
    assert sorted(e["event"]["job"]["job_id"] for e in stack.published_events()) == sorted(
        [ids[0], ids[2]]
    )
    service_with(stack)  # SNS recovers; SQS hands the refused message over again
    again = {"Records": [r for r in event["Records"] if r["messageId"] == by_job[ids[1]]]}
    assert client.lambda_.invoke("classify", again).payload == {"batchItemFailures": []}
    assert [e["event"]["job"]["job_id"] for e in stack.published_events()] == [ids[1]]
    assert job(client, ids[1])["attempts"] == 1  # a finished job is not run again


def test_sns_down_for_the_whole_batch_sends_every_message_back_and_loses_no_event(
    client: Client, stack: Stack
) -> None:
    ids = submit(client, 4)
    service_with(stack, publisher=RefusingPublisher(publisher(stack), set(), down=True))
    event = stack.receive_jobs_event()

    result = client.lambda_.invoke("classify", event)

    assert len(result.payload["batchItemFailures"]) == 4
    assert {job(client, i)["status"] for i in ids} == {"SUCCEEDED"}
    assert stack.published_events() == []
    service_with(stack)
    assert client.lambda_.invoke("classify", event).payload == {"batchItemFailures": []}
    events = stack.published_events()
    assert sorted(e["event"]["job"]["job_id"] for e in events) == sorted(ids)
    assert {job(client, i)["attempts"] for i in ids} == {1}
    assert client.lambda_.invoke("classify", event).payload == {"batchItemFailures": []}
    # A third delivery finds every job done, runs nothing, and repeats the same events.
    assert sorted(e["event"]["id"] for e in stack.published_events()) == sorted(
        e["event"]["id"] for e in events
    )
    assert {job(client, i)["attempts"] for i in ids} == {1}
