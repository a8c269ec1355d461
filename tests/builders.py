"""Builders of what tests send: multipart bodies, SQS events, S3 notifications."""

from __future__ import annotations

import json
import uuid
from typing import Any

BOUNDARY = "XyZ0boundary"


def multipart(
    files: list[tuple[str, str | None, bytes]] | None = None,
    fields: dict[str, str] | None = None,
    *,
    boundary: str = BOUNDARY,
    file_type: str = "application/octet-stream",
) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of text ``fields`` and ``(field, filename, data)`` files;
    the body and its content type."""
    out = b""
    for name, value in (fields or {}).items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, filename, data in files or []:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: {file_type}\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def sqs_record(
    body: str,
    *,
    message_id: str | None = None,
    receive_count: int = 1,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One record of a Lambda SQS event."""
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": "0"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"}
            for name, value in (attributes or {}).items()
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:queue",
        "awsRegion": "us-east-1",
    }


def sqs_event(*records: dict[str, Any]) -> dict[str, Any]:
    """A Lambda SQS event of these records."""
    return {"Records": list(records)}


def s3_notification(bucket: str, key: str, etag: str = "etag", event: str = "Put") -> str:
    """The body S3 sends to a queue when an object is created (its key URL-encoded)."""
    from urllib.parse import quote_plus

    record = {
        "eventName": f"ObjectCreated:{event}",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "eTag": etag}},
    }
    return json.dumps({"Records": [record]})
