"""The emulator's journal: S3 and DynamoDB writes survive a SIGKILL of the emulator; reads,
refused writes and the queues are not journaled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.emulator import PREFIX
from infra.journal import is_durable_write
from tests.runtime import ROOT


def start(journal: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.emulator", "--port", "0", "--journal", str(journal)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith(PREFIX), line
    return process, line[len(PREFIX) :].strip()


def client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal.jsonl"


def test_writes_survive_a_sigkill_and_come_back_on_replay(journal: Path) -> None:
    # GIVEN an emulator keeping its journal, and writes to DynamoDB and S3 (one refused)
    process, endpoint = start(journal)
    ddb, s3, sqs = client("dynamodb", endpoint), client("s3", endpoint), client("sqs", endpoint)
    ddb.create_table(
        TableName="jobs",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    ddb.put_item(TableName="jobs", Item={"id": {"S": "a"}, "status": {"S": "PENDING"}})
    ddb.update_item(
        TableName="jobs",
        Key={"id": {"S": "a"}},
        UpdateExpression="SET #s = :done",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": "SUCCEEDED"}},
    )
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(
            TableName="jobs",
            Item={"id": {"S": "a"}, "status": {"S": "OVERWRITTEN"}},
            ConditionExpression="attribute_not_exists(id)",
        )
    s3.create_bucket(Bucket="kept-images")
    s3.put_object(Bucket="kept-images", Key="images/t/a", Body=b"\xff\xd8\xffphoto")
    url = sqs.create_queue(QueueName="not-kept")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="lost on purpose")
    entries_before_reads = len(journal.read_text().splitlines())
    ddb.get_item(TableName="jobs", Key={"id": {"S": "a"}})
    s3.get_object(Bucket="kept-images", Key="images/t/a")
    assert len(journal.read_text().splitlines()) == entries_before_reads == 5

    # WHEN the emulator is killed outright, a torn line is left, and it starts again
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    with journal.open("a") as torn:
        torn.write('{"method": "PUT", "pa')
    process, endpoint = start(journal)
    try:
        ddb, s3 = client("dynamodb", endpoint), client("s3", endpoint)
        # THEN every acknowledged write is there, the refused one is not, the queue is not
        item = ddb.get_item(TableName="jobs", Key={"id": {"S": "a"}}, ConsistentRead=True)["Item"]
        assert item["status"] == {"S": "SUCCEEDED"}
        body = s3.get_object(Bucket="kept-images", Key="images/t/a")["Body"].read()
        assert body == b"\xff\xd8\xffphoto"
        queues = client("sqs", endpoint).list_queues().get("QueueUrls", [])
        assert not any(q.endswith("/not-kept") for q in queues)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _signed(service: str) -> str:
    return f"AWS4-HMAC-SHA256 Credential=k/20261202/us-east-1/{service}/aws4_request"


@pytest.mark.parametrize(
    ("environ", "body", "durable"),
    [
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem",
          "HTTP_AUTHORIZATION": _signed("dynamodb")},
         b"{}", True),
        ({"REQUEST_METHOD": "POST", "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem",
          "HTTP_AUTHORIZATION": _signed("dynamodb")},
         b"{}", False),
        ({"REQUEST_METHOD": "PUT", "HTTP_AUTHORIZATION": _signed("s3")},
         b"bytes", True),
        ({"REQUEST_METHOD": "POST", "CONTENT_TYPE": "multipart/form-data; boundary=x"},
         b'--x\r\nContent-Disposition: form-data; name="x-amz-credential"\r\n\r\n'
         b"k/20261202/us-east-1/s3/aws4_request\r\n--x--", True),  # a browser's presigned POST
        ({"REQUEST_METHOD": "POST", "HTTP_AUTHORIZATION": _signed("sqs")},
         b"Action=SendMessage", False),
        ({"REQUEST_METHOD": "GET", "HTTP_AUTHORIZATION": _signed("s3")},
         b"", False),
    ],
)  # fmt: skip
def test_only_s3_and_dynamodb_writes_are_journaled(
    environ: dict[str, Any], body: bytes, durable: bool
) -> None:
    assert is_durable_write(environ, body) is durable
