"""Pagination tokens of job listings: the key of the last job on a page, opaque to clients and
good only for the tenant they were made for."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from chalicelib.errors import BadRequest

_FIELDS = {"job_id", "owner", "created_at"}


def encode(key: dict[str, Any]) -> str:
    """A token for a DynamoDB key of the owner index (low-level attribute values)."""
    plain = {k: v["S"] for k, v in key.items()}
    return base64.urlsafe_b64encode(json.dumps(plain, sort_keys=True).encode()).decode()


def decode(token: str, *, owner: str) -> dict[str, Any]:
    """The key a token stands for; 400 ``invalid_next_token`` for garbage and for tokens made
    for another owner."""
    try:
        plain = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("next_token is not valid", code="invalid_next_token") from exc
    if (
        not isinstance(plain, dict)
        or set(plain) != _FIELDS
        or not all(isinstance(v, str) for v in plain.values())
        or plain["owner"] != owner
    ):
        raise BadRequest("next_token is not valid", code="invalid_next_token")
    return {k: {"S": v} for k, v in plain.items()}
