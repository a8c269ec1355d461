"""The OpenAPI 3.1 document, built from the operation table and the contract's models.

Served at ``/openapi.json`` and rendered at ``/docs``. Schemas come from pydantic (JSON Schema
2020-12, which OpenAPI 3.1 uses as is): a field that may be ``null`` reads
``anyOf: [{...}, {"type": "null"}]``, which 3.0- and 3.1-minded tools read the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from chalicelib import contract as c
from chalicelib.operations import OPERATIONS, Body, Operation, Reply

REF = "#/components/schemas/{model}"

ERROR_DESCRIPTIONS = {
    400: "Malformed request (see `error.code`)",
    401: "No `x-api-key` header",
    403: "The API key is not valid",
    404: "No such resource for this tenant (unknown, malformed or another tenant's id)",
    409: "The resource is in the wrong state for this request",
    413: "Too many bytes or pixels",
    415: "Not an image we decode, or a content type we do not accept",
    429: "Over the tenant's rate limit (`rate_limited`); retry after `Retry-After` seconds",
    503: "A dependency (S3, DynamoDB, SQS) is failing; retry after `Retry-After` seconds",
}
HEADERS = {
    "Location": ("where to follow the new resource", "string"),
    "Retry-After": ("seconds to wait before retrying", "string"),
    "Preference-Applied": ("the preference honoured: `wait=N`", "string"),
    "RateLimit": (
        'the tenant\'s rate limit now: `"tenant";r=<requests left>;t=<seconds until full>`',
        "string",
    ),
    "RateLimit-Policy": (
        'the tenant\'s rate limit: `"tenant";q=<burst>;w=<seconds to refill it>`',
        "string",
    ),
    "Content-Disposition": ('`attachment; filename="…"`: the name to save the file as', "string"),
    "X-Next-Token": ("more jobs follow: pass it as `next_token` for the next file", "string"),
}
RATE_LIMIT_HEADERS = ("RateLimit", "RateLimit-Policy")
BINARY = {"type": "string", "format": "binary"}
DESCRIPTION = (
    "Submit images, get a job id at once; an ImageNet model (EfficientNet-Lite0) classifies them "
    "in the background. Every operation but the public ones needs the `x-api-key` header. Errors "
    'are `{"error": {"code", "message"}}`. Job events reach webhooks (see `webhooks`), signed '
    "as Standard Webhooks v1 (`webhook-id`, `webhook-timestamp`, `webhook-signature`) and with "
    '`X-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`, which Stripe\'s verifier accepts.'
)


def _models(operations: Iterable[Operation]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    """Every model the document names, with the mode its schema is read in."""
    found: dict[type[BaseModel], JsonSchemaMode] = {
        c.Error: "serialization",
        c.JobEvent: "serialization",
    }
    for op in operations:
        for reply in op.replies:
            if reply.model is not None:
                found[reply.model] = "serialization"
        for body in op.bodies:
            if body.model is not None:
                found[body.model] = "validation"
    return list(found.items())


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    path_schema = op.path_model.model_json_schema() if op.path_model else {"properties": {}}
    for name in op.path_parameters:
        schema = path_schema["properties"].get(name, {"type": "string"})
        params.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": schema.pop("description", f"the {name.removesuffix('_id')}'s id"),
                "schema": schema,
            }
        )
    for location, model in (("query", op.query), ("header", op.headers)):
        if model is None:
            continue
        schema = model.model_json_schema(mode="validation", ref_template=REF)
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            prop = _not_null(prop)
            param = {"name": name, "in": location, "required": name in required, "schema": prop}
            if "description" in prop:
                param["description"] = prop.pop("description")
            params.append(param)
    return params


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema: a parameter is absent or has a value, never ``null``."""
    out = {k: v for k, v in schema.items() if k != "title" and not (k == "default" and v is None)}
    options = [s for s in out.pop("anyOf", []) if s != {"type": "null"}]
    if len(options) == 1:
        out.update(options[0])
    elif options:
        out["anyOf"] = options
    return out


def _body(bodies: tuple[Body, ...], refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    content = {b.media_type: {"schema": refs[b.model] if b.model else BINARY} for b in bodies}
    return {"required": True, "content": content}


def _reply(reply: Reply, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.model is not None:
        out["content"] = {"application/json": {"schema": refs[reply.model]}}
    elif reply.media_types:
        out["content"] = {media: {"schema": _schema_of(media)} for media in reply.media_types}
    if reply.headers:
        out["headers"] = {name: _header(name) for name in reply.headers}
    if reply.links:
        out["links"] = {
            link.name: {
                "operationId": link.operation_id,
                "parameters": {link.parameter: link.expression},
            }
            for link in reply.links
        }
    return out


def _schema_of(media_type: str) -> dict[str, Any]:
    """The schema of a reply that is not one of the contract's models (a page, a file, this
    document): JSON is an object, anything else text."""
    return {"type": "object"} if media_type == "application/json" else {"type": "string"}


def _header(name: str) -> dict[str, Any]:
    description, kind = HEADERS[name]
    return {"description": description, "schema": {"type": kind}}


def _errors(op: Operation, error_ref: Any) -> dict[str, Any]:
    codes = op.errors if op.public else (401, 403, 429, *op.errors)
    out: dict[str, Any] = {}
    for code in codes:
        response: dict[str, Any] = {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": error_ref}},
        }
        if code in (429, 503):
            response["headers"] = {"Retry-After": _header("Retry-After")}
        out[str(code)] = response
    return out


def _operation(op: Operation, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
    if op.public:
        out["security"] = []
    params = _parameters(op)
    if params:
        out["parameters"] = params
    if op.bodies:
        out["requestBody"] = _body(op.bodies, refs)
    responses = {str(r.status): _reply(r, refs) for r in op.replies}
    errors = _errors(op, refs[c.Error])
    out["responses"] = responses | {k: v for k, v in errors.items() if k not in responses}
    if not op.public:  # every answer after the key check says where the tenant's limit stands
        for status, response in out["responses"].items():
            if status not in ("401", "403"):
                limits = {name: _header(name) for name in RATE_LIMIT_HEADERS}
                response["headers"] = {**limits, **response.get("headers", {})}
    return out


def _webhooks(refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    return {
        "jobEvent": {
            "post": {
                "summary": "A job ended: sent to the job's webhook_url and to subscriptions",
                "parameters": [
                    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
                    for name in (
                        "webhook-id",
                        "webhook-timestamp",
                        "webhook-signature",
                        "X-Signature",
                        "X-Event-Id",
                        "X-Event-Type",
                        "X-Delivery-Attempt",
                    )
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": refs[c.JobEvent]}},
                },
                "responses": {"2XX": {"description": "Received; anything else is retried"}},
            }
        }
    }


@functools.cache
def _document() -> dict[str, Any]:
    refs, defs = models_json_schema(_models(OPERATIONS), ref_template=REF)
    by_model: dict[type[BaseModel], Any] = {model: ref for (model, _), ref in refs.items()}  # type: ignore[misc]
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, by_model)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imgcls: asynchronous image classification",
            "version": "1.0.0",
            "description": DESCRIPTION,
        },
        "security": [{"apiKey": []}],
        "paths": paths,
        "webhooks": _webhooks(by_model),
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": defs.get("$defs", {}),
        },
    }


def openapi_document(*, server_url: str = "/") -> dict[str, Any]:
    """The document, with ``servers`` pointing where the caller reached us."""
    return {**_document(), "servers": [{"url": server_url}]}


@functools.cache
def docs_page() -> str:
    """The ``/docs`` page: renders ``openapi.json`` with inline script and styles only."""
    return (Path(__file__).parent / "docs.html").read_text()
