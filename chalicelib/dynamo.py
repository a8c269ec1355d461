"""DynamoDB helpers for the stores: value conversion, conditional writes, error translation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values as a low-level item; ``None`` values are left out."""
    return {k: serialize(v) for k, v in values.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A low-level item as plain values."""
    return {k: deserialize(v) for k, v in item.items()}


@dataclass(frozen=True)
class Write:
    """What a conditional write did: its response, or, refused, the item as it stood."""

    response: dict[str, Any] | None
    old_item: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        """Whether the condition held and the write happened."""
        return self.response is not None


def conditional(write: Callable[..., Any], **request: Any) -> Write:
    """Make a conditional write that hands back the stored item when its condition refuses it
    (``ReturnValuesOnConditionCheckFailure``: no second read to learn why). Throttling and
    server errors become ``TransientError``."""
    try:
        return Write(dict(write(ReturnValuesOnConditionCheckFailure="ALL_OLD", **request)))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return Write(None, exc.response.get("Item"))  # type: ignore[arg-type]
        raise translate(exc) from exc


def call(operation: Callable[..., Any], **request: Any) -> Any:
    """Any other DynamoDB call, its errors translated."""
    try:
        return operation(**request)
    except ClientError as exc:
        raise translate(exc) from exc


def translate(exc: ClientError) -> Exception:
    """Throttling and server errors become ``TransientError`` (SQS retries); others stay."""
    code = exc.response.get("Error", {}).get("Code", "")
    if code in _TRANSIENT_CODES:
        return TransientError(f"DynamoDB {code}")
    return exc
