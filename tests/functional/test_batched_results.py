"""A batch's results: written one conditional write per job, announced in one SNS PublishBatch.

An event SNS did not accept is never marked sent: its message goes back to SQS, and the
redelivery publishes it. Every other job in the batch is finished and acknowledged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chalicelib.errors import TransientError
from chalicelib.job_events import EventPublisher
from chalicelib.job_store import JobRecord
from chalicelib.telemetry import REGISTRY
from tests.functional.conftest import Api, Stack
from tests.functional.test_reliability import classifier_around, message_ids
from tests.photos import CAT_CLASSES, cat_jpeg


class RefusingPublisher(EventPublisher):
    """SNS that refuses the events of chosen jobs (or, with ``down``, every batch request).

    A subclass only so the classifier accepts it (it takes an ``EventPublisher``); every call
    goes to ``inner``.
    """

    def __init__(self, inner: EventPublisher, refused: set[str], *, down: bool = False) -> None:
        self._inner = inner
        self.refused = refused
        self.down = down

    @property
    def topic_arn(self) -> str:
        """The inner publisher's topic."""
        return self._inner.topic_arn

    def publish(self, job: JobRecord) -> None:
        """As the inner publisher does."""
        self._inner.publish(job)

    def publish_many(self, jobs: Sequence[JobRecord]) -> set[str]:
        """Publish the events SNS accepts; the ids of the jobs whose event it refused."""
        if self.down:
            raise TransientError("SNS unavailable")
        accepted = [job for job in jobs if job.job_id not in self.refused]
        return self._inner.publish_many(accepted) | {j.job_id for j in jobs if j not in accepted}


def sns_calls(stack: Stack) -> list[str]:
    """The SNS operations the stack's client makes from now on, in order."""
    seen: list[str] = []

    def record(model: Any, **_: Any) -> None:
        seen.append(model.name)

    stack.clients.sns.meta.events.register("before-call.sns.*", record)
    return seen


def test_a_full_batch_is_announced_in_one_request_with_every_event(api: Api, stack: Stack) -> None:
    # GIVEN ten queued jobs
    ids = [api.submit(cat_jpeg()) for _ in range(10)]
    calls = sns_calls(stack)
    writes, publishes = REGISTRY.summary("result_write_ms"), REGISTRY.summary("event_publish_ms")

    # WHEN the batch is classified
    result = api.classify_queued()

    # THEN one PublishBatch announced all ten, with the attributes subscribers filter on
    assert result == {"batchItemFailures": []}
    assert calls == ["PublishBatch"]
    events = stack.published_events()
    assert sorted(e["event"]["job"]["job_id"] for e in events) == sorted(ids)
    assert {e["event"]["type"] for e in events} == {"job.succeeded"}
    assert {e["attributes"]["tenant"]["Value"] for e in events} == {"a"}
    assert {e["attributes"]["type"]["Value"] for e in events} == {"job.succeeded"}
    for job_id in ids:
        record = api.job(job_id)
        assert record["predictions"][0]["class_id"] in CAT_CLASSES
        stages = {"start", "queue_wait", "s3_get", "decode", "inference", "total"}
        assert stages <= set(record["timings_ms"])
    # The batch's stages are metrics, once a batch: the write and the publish, per image.
    assert REGISTRY.summary("result_write_ms")[0] == writes[0] + 1
    assert REGISTRY.summary("event_publish_ms")[0] == publishes[0] + 1


def test_an_event_sns_refused_goes_back_to_the_queue_and_is_published_on_redelivery(
    api: Api, stack: Stack
) -> None:
    # GIVEN three queued jobs, and SNS refusing the second one's event
    ids = [api.submit(cat_jpeg()) for _ in range(3)]
    real = stack.services.classify
    refusing = RefusingPublisher(stack.services.adapters.publisher, {ids[1]})
    stack.install(classify=classifier_around(stack, publisher=refusing))
    event = stack.receive_jobs_event()
    by_job = message_ids(event)

    # WHEN the batch is classified
    result = api.invoke("classify", event)

    # THEN every job finished, and only the unannounced one's message goes back
    assert result == {"batchItemFailures": [{"itemIdentifier": by_job[ids[1]]}]}
    assert [api.job(i)["status"] for i in ids] == ["SUCCEEDED"] * 3
    assert sorted(e["event"]["job"]["job_id"] for e in stack.published_events()) == sorted(
        [ids[0], ids[2]]
    )
    stack.install(classify=real)  # SNS recovers; SQS hands the refused message over again
    again = {"Records": [r for r in event["Records"] if r["messageId"] == by_job[ids[1]]]}
    assert api.invoke("classify", again) == {"batchItemFailures": []}
    assert [e["event"]["job"]["job_id"] for e in stack.published_events()] == [ids[1]]
    assert api.job(ids[1])["attempts"] == 1  # a finished job is not run again


def test_sns_down_for_the_whole_batch_sends_every_message_back_and_loses_no_event(
    api: Api, stack: Stack
) -> None:
    # GIVEN four queued jobs, and SNS down
    ids = [api.submit(cat_jpeg()) for _ in range(4)]
    real = stack.services.classify
    down = RefusingPublisher(stack.services.adapters.publisher, set(), down=True)
    stack.install(classify=classifier_around(stack, publisher=down))
    event = stack.receive_jobs_event()

    # WHEN the batch is classified
    result = api.invoke("classify", event)

    # THEN every job finished, every message goes back, and nothing was announced yet
    assert len(result["batchItemFailures"]) == 4
    assert {api.job(i)["status"] for i in ids} == {"SUCCEEDED"}
    assert stack.published_events() == []
    # AND the redelivery announces every job without running any again
    stack.install(classify=real)
    assert api.invoke("classify", event) == {"batchItemFailures": []}
    events = stack.published_events()
    assert sorted(e["event"]["job"]["job_id"] for e in events) == sorted(ids)
    assert {api.job(i)["attempts"] for i in ids} == {1}
    assert api.invoke("classify", event) == {"batchItemFailures": []}
    # A third delivery finds every job done, runs nothing, and repeats the same events.
    assert sorted(e["event"]["id"] for e in stack.published_events()) == sorted(
        e["event"]["id"] for e in events
    )
    assert {api.job(i)["attempts"] for i in ids} == {1}
