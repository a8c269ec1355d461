"""Requests validated with the contract's models; a bad value answers with its field's error.

A field marked ``contract.Invalid`` answers with that code, status and message; any other
invalid field with 400 ``invalid_request`` naming it; a body that is not JSON, or not an object,
with 400 ``invalid_json``. JSON is parsed by pydantic's own parser, whose nesting is bounded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from chalicelib.contract import Invalid
from chalicelib.errors import AppError, BadRequest


def validate[M: BaseModel](model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` from already-parsed values; bad values become the field's ``Invalid`` error."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(model, exc) from None


def validate_json[M: BaseModel](model: type[M], body: bytes) -> M:
    """``model`` from a JSON document (parsed with pydantic's bounded-depth parser)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise _invalid(model, exc) from None


def _invalid(model: type[BaseModel], exc: ValidationError) -> AppError:
    """The first error, as the ``Invalid`` marker of its field says, or a generic 400."""
    first = exc.errors(include_url=False, include_input=False)[0]
    if first["type"] == "json_invalid":
        return BadRequest(f"the body is not valid JSON ({first['msg']})", code="invalid_json")
    location = first["loc"]
    if not location:  # the document itself is of the wrong type
        return BadRequest("the JSON body must be an object", code="invalid_json")
    name = str(location[0])
    info = model.model_fields.get(name) or next(
        (f for f in model.model_fields.values() if f.alias == name), None
    )
    marker = next((m for m in (info.metadata if info else []) if isinstance(m, Invalid)), None)
    if marker is None:
        return BadRequest(f"{name}: {first['msg']}", code="invalid_request")
    error = AppError(marker.message, code=marker.code)
    error.status = marker.status
    return error
