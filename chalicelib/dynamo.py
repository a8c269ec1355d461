"""DynamoDB helpers shared by the repositories: value conversion and error translation."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.errors import TransientError

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()

_TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}


def to_dynamo(value: Any) -> Any:
    """Python → values boto3's serializer accepts (floats become Decimals)."""
    if isinstance(value, float):
        return Decimal(repr(round(value, 6)))
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo(v) for v in value]
    return value


def from_dynamo(value: Any) -> Any:
    """Deserialized DynamoDB values → plain Python (Decimals become ints or floats)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


def serialize(value: Any) -> Any:
    """One Python value as a low-level attribute value."""
    return _SERIALIZER.serialize(to_dynamo(value))


def deserialize(attribute: Any) -> Any:
    """One low-level attribute value as plain Python."""
    return from_dynamo(_DESERIALIZER.deserialize(attribute))


def is_condition_failure(exc: ClientError) -> bool:
    """Whether a write was refused by its condition."""
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def conditional[R](write: Callable[..., R], **request: Any) -> R | None:
    """Make a conditional write: its response, or None when its condition refused it. Other
    errors are translated (throttling and server errors become ``TransientError``)."""
    try:
        return write(**request)
    except ClientError as exc:
        if is_condition_failure(exc):
            return None
        raise translate(exc) from exc


def translate(exc: ClientError) -> Exception:
    """Throttling and server errors become ``TransientError`` (SQS retries); others stay."""
    code = exc.response.get("Error", {}).get("Code", "")
    if code in _TRANSIENT_CODES:
        return TransientError(f"DynamoDB {code}")
    return exc
