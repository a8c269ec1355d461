"""The local runtime's Lambda emulation: event shapes and the SQS poller's contract."""

from __future__ import annotations

import threading
from typing import Any

from infra.local import SqsPoller, chalice_config, function_setting, sqs_event


class FakeSqs:
    """An in-memory queue with just the calls the poller makes."""

    def __init__(self, count: int) -> None:
        self.visible = [
            {
                "MessageId": f"m{i}",
                "ReceiptHandle": f"r{i}",
                "Body": f'{{"job_id": "{i}"}}',
                "Attributes": {"SentTimestamp": "1", "ApproximateReceiveCount": "1"},
            }
            for i in range(count)
        ]
        self.deleted: list[str] = []

    def receive_message(self, **kw: Any) -> dict[str, Any]:
        take, self.visible = (
            self.visible[: kw["MaxNumberOfMessages"]],
            self.visible[kw["MaxNumberOfMessages"] :],
        )
        return {"Messages": take}

    def delete_message_batch(self, **kw: Any) -> dict[str, Any]:
        self.deleted += [e["ReceiptHandle"] for e in kw["Entries"]]
        return {}


def make_poller(sqs: FakeSqs, handler: Any, batch_size: int = 10) -> SqsPoller:
    return SqsPoller(
        sqs=sqs,  # type: ignore[arg-type]
        queue_url="q",
        queue_arn="arn:aws:sqs:us-east-1:1:q",
        region="us-east-1",
        handler=handler,
        function_name="classify",
        batch_size=batch_size,
        window_s=0,
        timeout_s=60,
        memory_mb=1024,
        stop=threading.Event(),
    )


def run_once(poller: SqsPoller) -> None:
    batch = poller._gather()
    poller._invoke(batch)


def test_event_has_lambda_sqs_shape() -> None:
    event = sqs_event(
        [
            {
                "MessageId": "m",
                "ReceiptHandle": "r",
                "Body": "b",
                "Attributes": {"SentTimestamp": 5},
                "MessageAttributes": {"t": {"DataType": "String", "StringValue": "x"}},
            }
        ],
        queue_arn="arn",
        region="eu-west-1",
    )
    record = event["Records"][0]
    assert record["messageId"] == "m"
    assert record["receiptHandle"] == "r"
    assert record["body"] == "b"
    assert record["attributes"] == {"SentTimestamp": "5"}
    assert record["messageAttributes"]["t"]["stringValue"] == "x"
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs",
        "arn",
        "eu-west-1",
    )


def test_only_reported_failures_stay_on_the_queue() -> None:
    sqs = FakeSqs(4)
    poller = make_poller(sqs, lambda e, c: {"batchItemFailures": [{"itemIdentifier": "m2"}]})
    run_once(poller)
    assert sorted(sqs.deleted) == ["r0", "r1", "r3"]


def test_a_raising_handler_or_unknown_failure_id_deletes_nothing() -> None:
    def boom(event: Any, context: Any) -> Any:
        raise RuntimeError("died mid-batch")

    sqs = FakeSqs(3)
    run_once(make_poller(sqs, boom))
    assert sqs.deleted == []
    sqs = FakeSqs(3)
    run_once(make_poller(sqs, lambda e, c: {"batchItemFailures": [{"itemIdentifier": "zz"}]}))
    assert sqs.deleted == []


def test_batch_size_is_honoured_and_context_is_passed() -> None:
    seen: list[tuple[int, int]] = []

    def handler(event: Any, context: Any) -> None:
        seen.append((len(event["Records"]), context.get_remaining_time_in_millis()))

    sqs = FakeSqs(7)
    poller = make_poller(sqs, handler, batch_size=3)
    for _ in range(3):
        run_once(poller)
    assert [n for n, _ in seen] == [3, 3, 1]
    assert all(0 < ms <= 60_000 for _, ms in seen)
    assert len(sqs.deleted) == 7


def test_classifier_is_held_to_one_concurrent_execution() -> None:
    config = chalice_config()
    assert function_setting(config, "classify", "reserved_concurrency", None) == 1
    assert function_setting(config, "classify", "lambda_memory_size", None) == 1024
