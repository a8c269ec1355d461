"""The emulator's speed-ups (infra/emulator.py) keep moto's behaviour."""

from __future__ import annotations

from typing import Any

import boto3
import moto.backends
import moto.sqs.models as sqs_models
from moto import mock_aws

from infra import emulator


def test_tuned_sqs_still_hands_out_messages_and_drops_those_past_retention() -> None:
    emulator.tune_moto()
    assert sqs_models.SQSBackend.is_message_valid_based_on_retention_period is emulator._retained
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})[
            "QueueUrl"
        ]
        for body in ("fresh", "stale"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        queue = sqs_models.sqs_backends["123456789012"]["us-east-1"].get_queue("q")
        stale: Any = next(m for m in queue._messages if m.body == "stale")
        stale.sent_timestamp -= 61_000  # sent 61 s ago, retention 60 s

        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)

        assert [m["Body"] for m in got["Messages"]] == ["fresh"]


def test_the_module_listing_is_computed_once_and_unchanged() -> None:
    emulator.tune_moto()
    listing = list(moto.backends.list_of_moto_modules())
    assert {"s3", "sqs", "sns", "dynamodb"} <= set(listing)
    assert moto.backends.list_of_moto_modules() is moto.backends.list_of_moto_modules()
